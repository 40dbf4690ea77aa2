"""Shared mechanics of the integration tests: certificates, a Kamailio
instance per test, a TLS SIP client, and the log check run after each test;
and what several test files use: the openssl helpers, the pieces of their
own configuration templates, kamcmd (rpc) and poll().

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
# prints some lines with the level only (no module).
LOG_LINE = re.compile(r"\s*(?:\d+\(\d+\) )?(?P<level>[A-Z]+): "
                      r"(?:(?P<module>\S+) \[[^\]]*\]: )?(?:\w+\(\): )?"
                      r"(?P<message>.*)")

# The main process reports every child that ends before shutdown ("exited
# normally", "exited by a signal", "stopped by a signal"); any such line
# means a worker crashed or gave up.
CHILD_DIED = re.compile(r"child process \d+ (exited|stopped)")


# --------------------------------------------------------------- certificates

# The extensions of the harness's certificates, and of other test files'
# certificates signed with openssl x509 -req (sign()).  chain_ca: a CA that
# names its issuer's key, for the links of a chain.
OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[chain_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
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


def openssl(*args, stdin=None, binary=False):
    """Runs the openssl CLI; returns what it printed (text, or bytes with
    `binary`).  A failure raises RuntimeError with openssl's message."""
    result = subprocess.run(["openssl", *args], input=stdin,
                            capture_output=True)
    if result.returncode != 0:
        raise RuntimeError("openssl %s failed: %s"
                           % (" ".join(args[:2]),
                              result.stderr.decode(errors="replace").strip()))
    return result.stdout if binary else result.stdout.decode("utf-8")


def new_key(path, kind="RSA"):
    """Writes a new private key to `path`: RSA 2048, or "EC" P-256 (quick
    to make); returns the path."""
    if kind == "EC":
        openssl("genpkey", "-algorithm", "EC",
                "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    else:
        openssl("genpkey", "-algorithm", "RSA",
                "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    return path


def self_sign(cert, key, subject, cnf, extensions, days=2):
    """Writes the self-signed certificate `cert` of `key` with the
    `extensions` section of the openssl config file `cnf`."""
    openssl("req", "-x509", "-new", "-key", key, "-subj", subject,
            "-days", str(days), "-config", cnf, "-extensions", extensions,
            "-out", cert)
    return cert, key


def sign(cert, key, subject, cnf, extensions, issuer, serial, days=2):
    """Writes the certificate `cert` of `key` signed by `issuer` ((certificate,
    key)) with the `extensions` section of the openssl config file `cnf`;
    the request is left beside it (.csr for .pem)."""
    csr = cert[:-4] + ".csr"
    openssl("req", "-new", "-key", key, "-subj", subject, "-config", cnf,
            "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1],
            "-set_serial", str(serial), "-days", str(days), "-extfile", cnf,
            "-extensions", extensions, "-out", cert)
    return cert, key


# The openssl config of ca_issue(): the CA database is the certificate's
# own folder, any subject with a CN is signed, ca_ext makes a CA; the
# caller's extension sections follow.
_CA_CNF = """\
[ca]
default_ca = test_ca
[test_ca]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = yes
[anything]
commonName = supplied
[req]
distinguished_name = dn
{req}[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""


def ca_issue(directory, sections, subject, issuer, extensions, serial,
             dates, kind="EC", utf8=False):
    """A certificate made with `openssl ca` (which sets both dates) in the
    new folder `directory`, with the `extensions` section of _CA_CNF plus
    the config text `sections`, the hex `serial`, the (start, end) `dates`
    and a new key of `kind` (see new_key).  `issuer` is an object with
    .path and .key, or None for a self-signed one; `utf8` takes the subject
    as UTF-8 and keeps its order.  Returns (certificate, key)."""
    os.makedirs(os.path.join(directory, "new"))
    open(os.path.join(directory, "index.txt"), "w").close()
    with open(os.path.join(directory, "serial"), "w") as f:
        f.write(serial + "\n")
    cnf = os.path.join(directory, "openssl.cnf")
    with open(cnf, "w", encoding="utf-8") as f:
        f.write(_CA_CNF.format(dir=directory, req="string_mask = utf8only\n"
                               "utf8 = yes\n" if utf8 else "") + sections)
    key = new_key(os.path.join(directory, "key.pem"), kind)
    csr = os.path.join(directory, "req.pem")
    path = os.path.join(directory, "cert.pem")
    utf8_opts = ["-utf8"] if utf8 else []
    openssl("req", "-new", *utf8_opts, "-config", cnf, "-key", key,
            "-subj", subject, "-out", csr)
    signer = (["-selfsign", "-keyfile", key] if issuer is None else
              ["-cert", issuer.path, "-keyfile", issuer.key])
    if utf8:
        utf8_opts.append("-preserveDN")
    openssl("ca", "-batch", *utf8_opts, "-notext", "-config", cnf,
            "-extensions", extensions, *signer,
            "-startdate", dates[0], "-enddate", dates[1],
            "-in", csr, "-out", path)
    return path, key


def concatenate(path, *files):
    """Writes the text of `files`, one after the other, to `path`."""
    with open(path, "w") as out:
        for name in files:
            with open(name) as f:
                out.write(f.read())
    return path


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
            f.write(OPENSSL_CNF)

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
        openssl("pkey", "-in", self.server_key, "-aes256",
                "-passout", "pass:" + KEY_PASSWORD,
                "-out", self.encrypted_server_key)
        self.other_key = new_key(self.path("other.key"))

    def path(self, name):
        return os.path.join(self.dir, name)

    def _ca(self, name, common_name):
        return self_sign(self.path(name + ".pem"),
                         new_key(self.path(name + ".key")),
                         "/CN=" + common_name, self._cnf, "ca")

    def _leaf(self, name, common_name, extensions, issuer):
        return sign(self.path(name + ".pem"),
                    new_key(self.path(name + ".key")),
                    "/CN=" + common_name, self._cnf, extensions, issuer,
                    random.getrandbits(63))

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


def cfg_head(core="", modules=(), tcp_children=4):
    """The start of a test file's own configuration template (see
    Kamailio): kamailio.cfg.in's core settings, the lines of `core`, the
    two listeners, then the module under test, loaded first (it must route
    OpenSSL's allocations to shared memory before anything else can make
    OpenSSL allocate), and the Kamailio modules named in `modules`."""
    lines = ["#!KAMAILIO",
             "debug=2",
             "log_stderror=yes",
             "children=2",
             "tcp_children=%d" % tcp_children,
             "auto_aliases=no",
             "enable_tls=yes",
             core.rstrip("\n"),
             "",
             "listen=udp:127.0.0.1:@UDP_PORT@",
             "listen=tls:127.0.0.1:@TLS_PORT@",
             "",
             'mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"',
             'loadmodule "@MODULE@"']
    lines += ['loadmodule "%s.so"' % name for name in modules]
    return "\n".join(lines) + "\n"


def cfg_big_reply(text, doublings, reason="OK"):
    """request_route lines: a TLS MESSAGE with an X-Big header gets a 200
    (`reason`) whose body is `text` doubled `doublings` times, for peers
    that do not read."""
    return """\
	if ($pr == "tls" && is_method("MESSAGE") && is_present_hf("X-Big")) {
		# A %d B reply body (%d B doubled %d times).
		$var(b) = "%s";
		$var(i) = 0;
		while ($var(i) < %d) {
			$var(b) = $var(b) + $var(b);
			$var(i) = $var(i) + 1;
		}
		set_reply_body("$var(b)", "text/plain");
		sl_send_reply("200", "%s");
		exit;
	}
""" % (len(text) << doublings, len(text), doublings, text, doublings, reason)


# The end of the request_route of a test file's configuration: as in
# kamailio.cfg.in, a TLS OPTIONS or MESSAGE is answered 200 with X-Len (the
# request's length), anything else 404.
CFG_ROUTE_END = """\
	if ($pr == "tls" && is_method("OPTIONS|MESSAGE")) {
		append_to_reply("X-Len: $ml\\r\\n");
		sl_send_reply("200", "OK");
		exit;
	}
	sl_send_reply("404", "Not Found");
}
"""


def fill(template, values):
    """`template` with each @NAME@ of `values` (name, value) replaced, in
    order."""
    for name, value in values:
        template = template.replace("@%s@" % name, str(value))
    return template


class Kamailio:
    """One Kamailio process tree running the configuration template, or
    the template `cfg` of a test file: its @UDP_PORT@, @TLS_PORT@,
    @MODULE@, @DIR@ and @TLS_MODPARAMS@ are filled in as in
    kamailio.cfg.in, then its own placeholders from `subst` ((name, value)
    pairs)."""

    def __init__(self, directory, workdir, module, modparams,
                 allow_errors=(), shm_mb=64, files=None, cfg=None, subst=()):
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
        self.ctl_sock = os.path.join(directory, "ctl.sock")     # for rpc()
        self.allow_errors = []
        self.expect_errors(*allow_errors)
        self.shm_mb = shm_mb
        self.proc = None
        self.should_run = False     # set once ready; exiting then is a death
        self.shutdown_offset = None # log size when SIGTERM was sent
        self.problems = []
        self._cfg = cfg
        self._subst = subst
        self._write_cfg(module, modparams)

    def _write_cfg(self, module, modparams):
        text = self._cfg
        if text is None:
            with open(CFG_TEMPLATE) as f:
                text = f.read()
        text = fill(text, [("UDP_PORT", self.udp_port),
                           ("TLS_PORT", self.tls_port),
                           ("MODULE", module),
                           ("DIR", self.dir),
                           ("TLS_MODPARAMS", modparam_lines(modparams))])
        text = fill(text, self._subst)
        with open(self.cfg_path, "w", encoding="utf-8") as f:
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

    def log_size(self):
        """The log's length in bytes, an offset for logged(since=...)."""
        return os.path.getsize(self.log_path)

    def logged(self, levels, *patterns, since=0, module=None):
        """Log lines at one of `levels` (a regex such as "ERROR|CRITICAL")
        whose message matches every pattern; only those of `module` (such
        as "tls") if given, from byte offset `since` of the log on.  The
        message is the text after Kamailio's "module [file:line]:
        function(): " prefix, so that a function named load_private_key()
        does not name the parameter."""
        compiled = [re.compile(p) for p in patterns]
        found = []
        for line in self._read_log(since):
            m = LOG_LINE.match(line)
            if (m and re.fullmatch(levels, m["level"])
                    and (module is None or m["module"] == module)
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


def client_hello(version=None):
    """A real ClientHello from Python's ssl, as bytes (nothing sent);
    `version` (an ssl.TLSVersion) pins one."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def client_context(ca_file, version=None, client_cert=None):
    """A client context trusting the CA certificate(s) in `ca_file`;
    `version` pins e.g. 'TLSv1.2'; `client_cert` is (certificate, key)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca_file)
    if version:
        pinned = ssl.TLSVersion[version.replace(".", "_")]
        ctx.minimum_version = ctx.maximum_version = pinned
    if client_cert:
        ctx.load_cert_chain(*client_cert)
    return ctx


class SipConnection:
    """A TLS client connection carrying SIP messages; `sni` is the server
    name it sends (None: no SNI extension at all)."""

    def __init__(self, port, ctx, sni=None):
        self.port = port
        raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        try:
            self.tls = ctx.wrap_socket(raw, server_hostname=sni)
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


def poll(what, condition, bound=30, step=0.1):
    """Waits until condition() is true and returns its value; fails the
    test, naming `what`, past `bound` seconds."""
    end = time.monotonic() + bound
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("%s: still not the case after %d s"
                                 % (what, bound))
        time.sleep(step)


# ------------------------------------------------------------------------ RPC

# RPC commands go through `kamcmd` and the server's ctl socket (the
# configuration template opens one).  kamcmd 5.6.3 exits 0 even when the
# command answers with a fault: it prints "error: <code> - <text>".
KAMCMD = "/usr/sbin/kamcmd"
RPC_TIMEOUT = 20            # seconds for one kamcmd call
FAULT = re.compile(r"error: (\d+) - (.*)", re.S)


def rpc(server, *args):
    """Runs one kamcmd command; returns (fault code or None, output text).

    kamcmd exits 0 after printing a fault, so the fault is read from its
    "error: <code> - <text>" output; a non-zero exit (no answer) fails."""
    result = subprocess.run(
        [KAMCMD, "-s", "unix:" + server.ctl_sock, *map(str, args)],
        capture_output=True, text=True, timeout=RPC_TIMEOUT,
        stdin=subprocess.DEVNULL)
    out = result.stdout.strip()
    m = FAULT.fullmatch(out)
    if m:
        return int(m.group(1)), m.group(2)
    if result.returncode != 0:
        raise AssertionError("kamcmd %s: exit %d: %s %s"
                             % (" ".join(map(str, args)), result.returncode,
                                out, result.stderr.strip()))
    return None, out


def rpc_ok(server, *args):
    """The output text of a kamcmd command that must not fail."""
    fault, out = rpc(server, *args)
    assert fault is None, "%s: fault %s: %s" % (args[0], fault, out)
    return out


def structs(text):
    """kamcmd's printing of structures ("{\\n\\tkey: value\\n}") as a list
    of dicts; values that are decimal integers become ints."""
    result, cur = [], None
    for line in text.splitlines():
        if line.strip() == "{":
            cur = {}
        elif line.strip() == "}":
            result.append(cur)
            cur = None
        elif cur is not None and line.startswith("\t"):
            key, _, value = line[1:].partition(":")
            value = value[1:] if value.startswith(" ") else value
            cur[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
    return result


def rpc_struct(server, *args):
    """The one structure a kamcmd command prints, as a dict."""
    items = structs(rpc_ok(server, *args))
    assert len(items) == 1, "%s: %r" % (args[0], items)
    return items[0]


def tls_info(server):
    return rpc_struct(server, "tls.info")


def tls_list(server):
    """The rows of `kamcmd tls.list`, as dicts."""
    return structs(rpc_ok(server, "tls.list"))


def shm_used(server):
    """(used, real_used) from core.shmmem."""
    mem = rpc_struct(server, "core.shmmem")
    return mem["used"], mem["real_used"]


def list_entry(server, conn):
    """The tls.list row of our client connection (by its local port)."""
    peer = "127.0.0.1:%d" % conn.local_port
    rows = [r for r in tls_list(server) if r["peer"] == peer]
    assert len(rows) == 1, "tls.list rows for %s: %r" % (peer, rows)
    return rows[0]


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
        self._shared = {}

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

    def shared(self, name, make):
        """What make(folder) returns, made on first use only, in the run's
        folder `name` (such as a test file's own certificates)."""
        if name not in self._shared:
            self._shared[name] = make(os.path.join(self.run_dir, name))
        return self._shared[name]


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

    def launch(self, modparams=None, allow_errors=(), shm_mb=64, files=None,
               cfg=None, subst=()):
        """Starts Kamailio without waiting.

        The module gets the server certificate and key, and an explicit
        modern tls_method, unless modparams overrides them (None removes one):
        tests of the module's own defaults say so.  `files` maps names to
        bytes written beside the config file.  `cfg` is a test file's own
        configuration template in place of kamailio.cfg.in, `subst` the
        (name, value) pairs of its own placeholders (see Kamailio)."""
        params = {"certificate": self.certs.server_cert,
                  "private_key": self.certs.server_key,
                  "tls_method": "TLSv1.2+"}
        params.update(modparams or {})
        name = "kamailio%d" % len(self.servers)
        server = Kamailio(os.path.join(self.dir, name), self.dir,
                          self.session.module, params, allow_errors, shm_mb,
                          files, cfg, subst)
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

    def connect(self, server, version=None, client_cert=None, sni=None):
        """A client connection (SNI `sni`, None: none sent)."""
        ctx = client_context(self.certs.ca_cert, version, client_cert)
        return SipConnection(server.tls_port, ctx, sni)

    def refusal(self, server, version=None, client_cert=None, sni=None):
        """How the server refused this client, or None if it answered.

        A refused TLS 1.2 client fails in the handshake; a TLS 1.3 client
        finishes its side first and sees the server's alert (or EOF) on its
        first read.  A server that neither answers nor refuses fails the
        test."""
        try:
            with self.connect(server, version, client_cert, sni) as conn:
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
