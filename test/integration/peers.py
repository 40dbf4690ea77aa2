"""Real TLS peers for the outbound (client role) tests: a Python `ssl`
server on a free loopback port that records what Kamailio's client did.

Each accepted connection runs in its own thread and is recorded as a
PeerConnection: the SNI the client sent, whether the handshake succeeded
(and why not), the protocol version, the client certificate, and every SIP
message received.  Requests are answered "200 OK" on the same connection
with the request's Via headers copied, as a SIP server replying over a
reliable transport does (RFC 3261 18.2.2).

Everything is bounded in time: the handshake by IO_TIMEOUT, reads poll so
that close() ends every thread within a second.
"""

import socket
import ssl
import threading
import time

import harness

POLL = 0.2                      # seconds between checks of the stop flag
NOT_CALLED = "<sni callback not called>"


class PeerConnection:
    """What the peer saw on one accepted TCP connection."""

    def __init__(self, address):
        self.address = address
        self.sni = NOT_CALLED           # server_name from the sni_callback
        self.handshake_done = False     # the handshake ended, either way
        self.handshake_ok = False
        self.error = None               # why the handshake or a read failed
        self.version = None
        self.cipher = None
        self.client_cert = None         # getpeercert() dict, if one was sent
        self.client_cert_der = None
        self.messages = []              # harness.SipMessage, in order
        self.raw = []                   # the bytes of each message
        self.closed = False

    def __repr__(self):
        return ("<PeerConnection %s sni=%r ok=%s error=%r version=%s "
                "messages=%d>" % (self.address, self.sni, self.handshake_ok,
                                  self.error, self.version,
                                  len(self.messages)))


class TlsPeer:
    """A TLS server on 127.0.0.1:<free port>.

    `version` pins one protocol version ("TLSv1.2", "TLSv1.3");
    `client_ca` makes the peer require a client certificate signed by it;
    `answer` False makes it record requests without replying."""

    def __init__(self, cert, key, client_ca=None, version=None, answer=True):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if version:
            pinned = ssl.TLSVersion[version.replace(".", "_")]
            ctx.minimum_version = ctx.maximum_version = pinned
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        ctx.sni_callback = self._sni
        self.ctx = ctx
        self.answer = answer
        self.connections = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads = []
        self._by_sslobj = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(POLL)
        self.port = self.sock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop,
                                          daemon=True)
        self._acceptor.start()

    # ------------------------------------------------------------ lifecycle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._stop.set()
        self._acceptor.join(5)
        for thread in list(self._threads):
            thread.join(harness.IO_TIMEOUT + 2)
        self.sock.close()

    # -------------------------------------------------------------- waiting

    def _wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_messages(self, count, timeout=harness.IO_TIMEOUT):
        """True once `count` SIP messages arrived (over all connections)."""
        return self._wait(lambda: len(self.messages) >= count, timeout)

    def wait_handshakes(self, count=1, timeout=harness.IO_TIMEOUT):
        """True once `count` handshakes ended, successfully or not."""
        return self._wait(
            lambda: sum(c.handshake_done for c in self.connections) >= count,
            timeout)

    def wait_closed(self, count=1, timeout=harness.IO_TIMEOUT):
        """True once `count` connections ended (handshake failure or EOF)."""
        return self._wait(
            lambda: sum(c.closed for c in self.connections) >= count,
            timeout)

    @property
    def messages(self):
        return [m for c in list(self.connections) for m in c.messages]

    # ------------------------------------------------------------- workings

    def _notify(self):
        with self._cond:
            self._cond.notify_all()

    def _sni(self, sslobj, server_name, ctx):
        conn = self._by_sslobj.get(id(sslobj))
        if conn is not None:
            conn.sni = server_name
        return None

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                raw, address = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn = PeerConnection(address)
            with self._cond:
                self.connections.append(conn)
                self._cond.notify_all()
            thread = threading.Thread(target=self._serve, args=(raw, conn),
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw, conn):
        tls = None
        try:
            raw.settimeout(harness.IO_TIMEOUT)
            tls = self.ctx.wrap_socket(raw, server_side=True,
                                       do_handshake_on_connect=False)
            self._by_sslobj[id(tls)] = conn
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                conn.error = "handshake: %s" % exc
                return
            finally:
                conn.handshake_done = True
                self._notify()
            conn.handshake_ok = True
            conn.version = tls.version()
            conn.cipher = tls.cipher()
            conn.client_cert = tls.getpeercert() or None
            conn.client_cert_der = tls.getpeercert(binary_form=True)
            self._notify()
            self._read_loop(tls, conn)
        finally:
            self._by_sslobj.pop(id(tls), None)
            conn.closed = True
            try:
                (tls or raw).close()
            except OSError:
                pass
            self._notify()

    def _read_loop(self, tls, conn):
        tls.settimeout(POLL)
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = tls.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError) as exc:
                conn.error = "read: %s" % exc
                return
            if not chunk:
                return
            buf += chunk
            while True:
                buf = buf.lstrip(b"\r\n")           # keepalive CRLFs
                message, size = parse_message(buf)
                if message is None:
                    break
                conn.raw.append(buf[:size])
                buf = buf[size:]
                with self._cond:
                    conn.messages.append(message)
                    self._cond.notify_all()
                if self.answer and message.status is None:
                    tls.settimeout(harness.IO_TIMEOUT)
                    tls.sendall(reply_to(message))
                    tls.settimeout(POLL)


def parse_message(buf):
    """(SipMessage, bytes used) for the first whole message, else (None, 0)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, 0
    start_line, headers = harness.parse_head(buf[:end])
    length = int(dict((k.lower(), v) for k, v in headers)
                 .get("content-length", "0"))
    size = end + 4 + length
    if len(buf) < size:
        return None, 0
    return harness.SipMessage(start_line, headers, buf[end + 4:size]), size


def reply_to(request, code=200, reason="OK"):
    """A response to `request` with its Vias, From, To (+tag), Call-ID and
    CSeq, as bytes."""
    lines = ["SIP/2.0 %d %s" % (code, reason)]
    for name, value in request.headers:
        lname = name.lower()
        if lname in ("via", "v"):
            lines.append("Via: " + value)
        elif lname in ("from", "f", "call-id", "cseq"):
            lines.append("%s: %s" % (name, value))
        elif lname in ("to", "t"):
            if ";tag=" not in value:
                value += ";tag=peer%08x" % (id(request) & 0xffffffff)
            lines.append("To: " + value)
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
