"""Shared mechanics of the integration tests: certificates, a Kamailio
instance per test, a TLS SIP client, and the log check run after each test.

Standard library only, plus the `openssl` command-line tool.
"""

import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KAMAILIO = "/usr/sbin/kamailio"
CFG_TEMPLATE = os.path.join(HERE, "kamailio.cfg.in")

START_TIMEOUT = 10      # seconds for Kamailio to accept TLS, or to exit
STOP_TIMEOUT = 5        # seconds between SIGTERM and SIGKILL
IO_TIMEOUT = 10         # seconds for any single client socket operation

# A log line at one of these levels fails the test unless the test expected it.
BAD_LEVELS = "ERROR|CRITICAL|BUG|ALERT"

# Core noise, allowed only after SIGTERM: while Kamailio 5.6.3 shuts down,
# the TCP main process reads the fd-passing sockets of children that already
# exited and logs "receive_fd(): EOF on N" at CRITICAL.  It happens the same
# with plain TCP and no TLS module loaded.  Startup prints no line at a bad
# level, so there is no other allow-list.
SHUTDOWN_NOISE = [re.compile(r"CRITICAL: <core> \[core/pass_fd\.c:\d+\]: "
                             r"receive_fd\(\): EOF on \d+$")]

# "  0(1234) ERROR: tls [tls_domain.c:42]: load_key(): message"; the core
# prints some lines with the level only.
LOG_LINE = re.compile(r"\s*(?:\d+\(\d+\) )?(?P<level>[A-Z]+): "
                      r"(?:\S+ \[[^\]]*\]: )?(?:\w+\(\): )?(?P<message>.*)")

# The main process reports every child that ends before shutdown ("exited
# normally", "exited by a signal", "stopped by a signal"); any such line
# means a worker crashed or gave up.
CHILD_DIED = re.compile(r"child process \d+ (exited|stopped)")


# --------------------------------------------------------------- certificates

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

KEY_PASSWORD = "secret"


class Certs:
    """The run's test PKI, generated once with the openssl CLI.

    RSA keys on purpose: RSA private-key operations use blinding, whose
    OpenSSL state is the kind that breaks when shared across forked workers.
    """

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self._cnf = self.path("openssl.cnf")
        with open(self._cnf, "w") as f:
            f.write(_OPENSSL_CNF)

        self.ca = self._ca("ca", "Integration Test CA")
        self.untrusted_ca = self._ca("untrusted-ca", "Untrusted Test CA")
        self.server_cert, self.server_key = self._leaf(
            "server", "localhost", "server", self.ca)
        # (certificate, key) pairs, as client_context() takes them.
        self.client = self._leaf("client", "test client", "client", self.ca)
        self.untrusted_client = self._leaf(
            "untrusted-client", "untrusted client", "client",
            self.untrusted_ca)
        self.encrypted_server_key = self.path("server-encrypted.key")
        self._openssl("pkey", "-in", self.server_key, "-aes256",
                      "-passout", "pass:" + KEY_PASSWORD,
                      "-out", self.encrypted_server_key)
        self.other_key = self._key("other")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _openssl(self, *args):
        result = subprocess.run(["openssl", *args], capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise RuntimeError("openssl %s failed: %s"
                               % (args[0], result.stderr.strip()))

    def _key(self, name):
        key = self.path(name + ".key")
        self._openssl("genpkey", "-algorithm", "RSA",
                      "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
        return key

    def _ca(self, name, common_name):
        key = self._key(name)
        cert = self.path(name + ".pem")
        self._openssl("req", "-x509", "-new", "-key", key,
                      "-subj", "/CN=" + common_name, "-days", "2",
                      "-config", self._cnf, "-extensions", "ca",
                      "-out", cert)
        return cert, key

    def _leaf(self, name, common_name, extensions, issuer):
        issuer_cert, issuer_key = issuer
        key = self._key(name)
        csr = self.path(name + ".csr")
        cert = self.path(name + ".pem")
        self._openssl("req", "-new", "-key", key, "-subj", "/CN=" + common_name,
                      "-config", self._cnf, "-out", csr)
        self._openssl("x509", "-req", "-in", csr, "-CA", issuer_cert,
                      "-CAkey", issuer_key,
                      "-set_serial", str(random.getrandbits(63)),
                      "-days", "2", "-extfile", self._cnf,
                      "-extensions", extensions, "-out", cert)
        return cert, key

    @property
    def ca_cert(self):
        return self.ca[0]


# ------------------------------------------------------------------ processes

def free_port(kind):
    """A port the kernel just handed out for `kind` (SOCK_STREAM/SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_listening(port):
    """Whether something listens on 127.0.0.1:port.

    Read from /proc rather than probed with a connection: a connection closed
    without a handshake is a peer event the module may rightly log."""
    local = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        return any(fields[1] == local and fields[3] == "0A"      # LISTEN
                   for fields in (line.split() for line in f))


def modparam_lines(params):
    lines = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            value = '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')
        lines.append('modparam("tls", "%s", %s)' % (name, value))
    return "\n".join(lines)


class Kamailio:
    """One Kamailio process tree running the configuration template."""

    def __init__(self, directory, workdir, module, modparams,
                 allow_errors=(), shm_mb=64, files=None):
        self.dir = directory            # holds the config file, log, sockets
        self.workdir = workdir          # Kamailio's -w; not the config's dir
        os.makedirs(directory, exist_ok=True)
        for name, data in (files or {}).items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        self.tls_port = free_port(socket.SOCK_STREAM)
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.cfg_path = os.path.join(directory, "kamailio.cfg")
        self.log_path = os.path.join(directory, "kamailio.log")
        self.allow_errors = []
        self.expect_errors(*allow_errors)
        self.shm_mb = shm_mb
        self.proc = None
        self.should_run = False     # set once ready; exiting then is a death
        self.shutdown_offset = None # log size when SIGTERM was sent
        self.problems = []
        self._write_cfg(module, modparams)

    def _write_cfg(self, module, modparams):
        with open(CFG_TEMPLATE) as f:
            text = f.read()
        for name, value in (("UDP_PORT", self.udp_port),
                            ("TLS_PORT", self.tls_port),
                            ("MODULE", module),
                            ("DIR", self.dir),
                            ("TLS_MODPARAMS", modparam_lines(modparams))):
            text = text.replace("@%s@" % name, str(value))
        with open(self.cfg_path, "w") as f:
            f.write(text)

    def launch(self):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [KAMAILIO, "-f", self.cfg_path, "-DD", "-E",
                 "-w", self.workdir, "-P", os.path.join(self.dir, "kamailio.pid"),
                 "-m", str(self.shm_mb), "-M", "8"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def expect_errors(self, *patterns):
        """Declares log lines at a bad level that this test expects."""
        self.allow_errors += [re.compile(p) for p in patterns]

    def wait_ready(self):
        """True once the TLS port accepts TCP; False if Kamailio exited.

        From then on Kamailio must keep running until stop()."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if tcp_listening(self.tls_port):
                self.should_run = True
                return True
            time.sleep(0.05)
        raise AssertionError("kamailio neither accepted TLS connections nor "
                             "exited within %d s" % START_TIMEOUT)

    def wait_exit(self):
        """Kamailio's exit status, waiting up to START_TIMEOUT."""
        try:
            return self.proc.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError("kamailio still running %d s after start"
                                 % START_TIMEOUT) from None

    def stop(self):
        """Stops the process tree; records a hang in self.problems."""
        if self.proc is None:
            return
        if self.should_run and self.proc.poll() is not None:
            self.problems.append("kamailio exited (status %s) before the end "
                                 "of the test" % self.proc.returncode)
        if self.proc.poll() is None:
            self.shutdown_offset = os.path.getsize(self.log_path)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.problems.append("kamailio did not exit within %d s of "
                                     "SIGTERM; killed" % STOP_TIMEOUT)
                self.proc.kill()
                self.proc.wait()
        # Children left behind by a main process that died or hung.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _read_log(self, start=0, end=None):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        return data[start:end].decode(errors="replace").splitlines()

    @property
    def log_lines(self):
        return self._read_log()

    def logged(self, levels, *patterns):
        """Log lines at one of `levels` (a regex such as "ERROR|CRITICAL")
        whose message matches every pattern.  The message is the text after
        Kamailio's "module [file:line]: function(): " prefix, so that a
        function named load_private_key() does not name the parameter."""
        compiled = [re.compile(p) for p in patterns]
        found = []
        for line in self.log_lines:
            m = LOG_LINE.match(line)
            if (m and re.fullmatch(levels, m["level"])
                    and all(p.search(m["message"]) for p in compiled)):
                found.append(line)
        return found

    def unexpected_lines(self):
        """Log lines at a bad level that nobody declared as expected."""
        def unexpected(line, noise=()):
            m = LOG_LINE.match(line)
            return (m and re.fullmatch(BAD_LEVELS, m["level"]) and
                    not any(p.search(line)
                            for p in self.allow_errors + list(noise)))

        cut = self.shutdown_offset
        running = self._read_log(0, cut)
        stopping = self._read_log(cut) if cut is not None else []
        return ([line for line in running if unexpected(line)] +
                [line for line in stopping
                 if unexpected(line, SHUTDOWN_NOISE)])

    def death_lines(self):
        return [line for line in self.log_lines if CHILD_DIED.search(line)]


# ------------------------------------------------------------------------ SIP

class SipMessage:
    def __init__(self, start_line, headers, body):
        self.start_line = start_line
        self.headers = headers          # [(name, value)] in wire order
        self.body = body

    @property
    def status(self):
        """The reply's status code, or None for a request."""
        if self.start_line.startswith("SIP/2.0 "):
            return int(self.start_line.split()[1])
        return None

    @property
    def method(self):
        return None if self.status else self.start_line.split()[0]

    def header(self, name):
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def __repr__(self):
        return "<SipMessage %r>" % self.start_line


COMPACT_NAMES = {"l": "content-length", "i": "call-id"}


def parse_head(head):
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:        # folded header
            name, value = headers.pop()
            headers.append((name, value + " " + line.strip()))
            continue
        name, _, value = line.partition(":")
        name = name.strip()
        name = COMPACT_NAMES.get(name.lower(), name)
        headers.append((name, value.strip()))
    return lines[0], headers


def sip_request(method, request_port, via_port, transport="TLS", cseq=1,
                body=b"", call_id=None, headers=()):
    """A complete request as bytes; `headers` are extra (name, value) pairs."""
    call_id = call_id or "%016x@integration.test" % random.getrandbits(64)
    branch = "z9hG4bK%016x" % random.getrandbits(64)
    tag = "%08x" % random.getrandbits(32)
    uri = "sip:test@127.0.0.1:%d" % request_port
    if transport == "TLS":
        uri += ";transport=tls"
    lines = [
        "%s %s SIP/2.0" % (method, uri),
        "Via: SIP/2.0/%s 127.0.0.1:%d;branch=%s;rport"
        % (transport, via_port, branch),
        "Max-Forwards: 70",
        "From: <sip:tester@127.0.0.1>;tag=%s" % tag,
        "To: <%s>" % uri,
        "Call-ID: %s" % call_id,
        "CSeq: %d %s" % (cseq, method),
    ]
    lines += ["%s: %s" % pair for pair in headers]
    if body:
        lines.append("Content-Type: text/plain")
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class ConnectionClosed(ConnectionError):
    pass


def client_context(certs, version=None, client_cert=None):
    """A client context trusting the test CA; `version` pins e.g. 'TLSv1.2'."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(certs.ca_cert)
    if version:
        pinned = ssl.TLSVersion[version.replace(".", "_")]
        ctx.minimum_version = ctx.maximum_version = pinned
    if client_cert:
        ctx.load_cert_chain(*client_cert)
    return ctx


class SipConnection:
    """A TLS client connection carrying SIP messages."""

    def __init__(self, port, ctx):
        self.port = port
        raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        try:
            self.tls = ctx.wrap_socket(raw)
        except BaseException:
            raw.close()
            raise
        self._buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.tls.close()

    @property
    def version(self):
        return self.tls.version()

    @property
    def local_port(self):
        return self.tls.getsockname()[1]

    def build(self, method, **kw):
        """A request to the server, with this connection's Via."""
        return sip_request(method, self.port, self.local_port, **kw)

    def send(self, data, record_size=None):
        """Sends data; with record_size, one TLS record per chunk."""
        if record_size is None:
            self.tls.sendall(data)
            return
        for i in range(0, len(data), record_size):
            self.tls.sendall(data[i:i + record_size])

    def _fill(self):
        chunk = self.tls.recv(65536)
        if not chunk:
            raise ConnectionClosed("server closed the connection")
        self._buf += chunk

    def read_message(self):
        while True:
            self._buf = self._buf.lstrip(b"\r\n")       # keepalive CRLFs
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._fill()
        start_line, headers = parse_head(self._buf[:end])
        length = int(dict((k.lower(), v) for k, v in headers)
                     .get("content-length", "0"))
        body_start = end + 4
        while len(self._buf) < body_start + length:
            self._fill()
        body = self._buf[body_start:body_start + length]
        self._buf = self._buf[body_start + length:]
        return SipMessage(start_line, headers, body)

    def request(self, data, record_size=None):
        self.send(data, record_size)
        return self.read_message()


class UdpClient:
    """A UDP socket sending SIP requests to the server's UDP port."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def build(self, method, **kw):
        return sip_request(method, self.port, self.sock.getsockname()[1],
                           transport="UDP", **kw)

    def send(self, data):
        self.sock.sendto(data, ("127.0.0.1", self.port))


def run_threads(count, work):
    """Runs work(i) in `count` threads at once; returns results or exceptions."""
    results = [None] * count
    start = threading.Barrier(count)

    def body(i):
        try:
            start.wait()
            results[i] = work(i)
        except Exception as e:          # reported to the test, not lost
            results[i] = e

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# ---------------------------------------------------------------- test context

class Session:
    """What all tests of one run share: the module path and the PKI."""

    def __init__(self, module, run_dir):
        # A snapshot: rebuilding the module in place while Kamailio maps it
        # would crash the running test, and every test should see one build.
        self.module = os.path.join(run_dir, "module", "tls.so")
        os.makedirs(os.path.dirname(self.module))
        shutil.copy2(module, self.module)
        self.run_dir = run_dir
        self._certs = None
        self._cases = 0

    def case_dir(self):
        """A fresh directory for the next test.  Numbered, not named after the
        test: a log line must not name a parameter just by quoting a path."""
        self._cases += 1
        path = os.path.join(self.run_dir, "t%02d" % self._cases)
        os.makedirs(path)
        return path

    @property
    def certs(self):
        if self._certs is None:
            self._certs = Certs(os.path.join(self.run_dir, "certs"))
        return self._certs


class Case:
    """The context one test function receives as its argument."""

    def __init__(self, session):
        self.session = session
        self.dir = session.case_dir()
        self.servers = []

    @property
    def certs(self):
        return self.session.certs

    def path(self, name):
        return os.path.join(self.dir, name)

    def launch(self, modparams=None, allow_errors=(), shm_mb=64, files=None):
        """Starts Kamailio without waiting.

        The module gets the server certificate and key, and an explicit
        modern tls_method, unless modparams overrides them (None removes one):
        tests of the module's own defaults say so.  `files` maps names to
        bytes written beside the config file."""
        params = {"certificate": self.certs.server_cert,
                  "private_key": self.certs.server_key,
                  "tls_method": "TLSv1.2+"}
        params.update(modparams or {})
        name = "kamailio%d" % len(self.servers)
        server = Kamailio(os.path.join(self.dir, name), self.dir,
                          self.session.module, params, allow_errors, shm_mb,
                          files)
        self.servers.append(server)
        server.launch()
        return server

    def kamailio(self, modparams=None, **kw):
        """A Kamailio that accepts TLS connections."""
        server = self.launch(modparams, **kw)
        if not server.wait_ready():
            raise AssertionError("kamailio exited during startup (status %s)"
                                 % server.proc.returncode)
        return server

    def kamailio_fails(self, modparams, **kw):
        """A Kamailio expected to refuse to start; ERROR lines are expected."""
        kw.setdefault("allow_errors", [r"\bERROR:"])
        server = self.launch(modparams, **kw)
        status = server.wait_exit()
        assert status != 0, "kamailio exited with status 0 instead of failing"
        return server

    def connect(self, server, version=None, client_cert=None):
        ctx = client_context(self.certs, version, client_cert)
        return SipConnection(server.tls_port, ctx)

    def refusal(self, server, version=None, client_cert=None):
        """How the server refused this client, or None if it answered.

        A refused TLS 1.2 client fails in the handshake; a TLS 1.3 client
        finishes its side first and sees the server's alert (or EOF) on its
        first read.  A server that neither answers nor refuses fails the
        test."""
        try:
            with self.connect(server, version, client_cert) as conn:
                conn.request(conn.build("OPTIONS"))
        except (ssl.SSLError, ConnectionClosed, ConnectionResetError,
                BrokenPipeError) as exc:
            return exc
        except socket.timeout:
            raise AssertionError("server neither answered nor refused the "
                                 "client within %d s" % IO_TIMEOUT) from None
        return None

    def finish(self):
        """Stops every server; returns (problem, log lines) pairs."""
        problems = []
        for server in self.servers:
            server.stop()
            label = os.path.basename(server.dir)
            for problem in server.problems:
                problems.append(("%s: %s" % (label, problem), []))
            died = server.death_lines()
            if died:
                problems.append(("%s: a kamailio process died" % label, died))
            bad = server.unexpected_lines()
            if bad:
                problems.append(("%s: unexpected log lines" % label, bad))
        return problems
