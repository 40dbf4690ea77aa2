"""Low-memory thresholds and timeouts: low_mem_threshold1/2,
handshake_timeout, connection_timeout, send_timeout.

Each test runs Debian's kamailio with the module under test and this file's
configuration: the harness's (four TCP readers, a ctl socket for kamcmd)
plus what these cases need:

- a UDP request with X-Target: addr:port is forwarded by the UDP worker
  on the existing TLS connection from that address (as in the harness);
- htable's `hog` table and a UDP request (MESSAGE with X-Hog: N) that fills
  it with N values of 512 KB, X-Release: N empties it again: free shared
  memory goes down and up while Kamailio runs, read with `kamcmd
  core.shmmem`;
- a TLS MESSAGE with X-Big gets a 60 KB reply body, for a peer that does
  not read;
- core settings per case (tcp_send_timeout and the write queue sizes for
  the send_timeout cases).

Nothing here measures time: waits poll for a state, with generous bounds
(CLOSE_BOUND); "still open" is checked by a request being answered.
Loopback only.  LIMITS_VERBOSE=1 prints what some cases saw.
"""

import os
import re
import socket
import ssl
import time

import harness

CLOSE_BOUND = 30            # seconds a server may take to close what it should
CHUNK = 512 * 1024          # bytes of one value of the hog table
TCP_READERS = 4             # tcp_children in CFG
# LIMITS_VERBOSE=1: print what some cases saw (line counts, log lines).
VERBOSE = os.environ.get("LIMITS_VERBOSE") == "1"

# The harness's configuration plus a shared-memory hog (htable, driven over
# UDP) and a large reply on request.
CFG = harness.cfg_head("""\
tcp_rd_buf_size=65536
@CORE_EXTRA@
""", ["sl", "textops", "pv", "siputils", "xlog", "ctl", "htable"]) + """

modparam("ctl", "binrpc", "unix:@DIR@/ctl.sock")
modparam("htable", "htable", "hog=>size=8;")

@TLS_MODPARAMS@

request_route {
	if ($pr == "udp" && is_method("MESSAGE") && is_present_hf("X-Hog")) {
		# N values of 512 KB (16 B doubled 15 times) in shared memory.
		$var(chunk) = "0123456789abcdef";
		$var(i) = 0;
		while ($var(i) < 15) {
			$var(chunk) = $var(chunk) + $var(chunk);
			$var(i) = $var(i) + 1;
		}
		$var(n) = $(hdr(X-Hog){s.int});
		$var(i) = 0;
		while ($var(i) < $var(n)) {
			$sht(hog=>$var(i)) = $var(chunk);
			$var(i) = $var(i) + 1;
		}
		sl_send_reply("200", "Hogged");
		exit;
	}
	if ($pr == "udp" && is_method("MESSAGE") && is_present_hf("X-Release")) {
		$var(n) = $(hdr(X-Release){s.int});
		$var(i) = 0;
		while ($var(i) < $var(n)) {
			$sht(hog=>$var(i)) = $null;
			$var(i) = $var(i) + 1;
		}
		sl_send_reply("200", "Released");
		exit;
	}
	if ($pr == "udp" && is_present_hf("X-Target")) {
		# Sent from this UDP worker on the client's existing TLS connection.
		$du = "sip:" + $hdr(X-Target) + ";transport=tls";
		forward();
		exit;
	}
""" + harness.cfg_big_reply(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX", 10,
    "Big") + harness.CFG_ROUTE_END

LOW1_WARNING = (r"^free shared memory \d+ KB below low_mem_threshold1 "
                r"\(\d+ KB\): refusing new TLS connections$")
LOW1_NOTICE = r"^free shared memory back above low_mem_threshold1$"
LOW2_WARNING = (r"^free shared memory \d+ KB below low_mem_threshold2 "
                r"\(\d+ KB\): closing TLS connections that need memory$")
THRESHOLDS = (r"^low memory thresholds: new connections below (\d+) KB "
              r"free, established below (\d+) KB$")
HANDSHAKE_TIMEOUT = (r"\(conn \d+\): TLS handshake not completed within "
                     r"handshake_timeout \(%d s\): closing$")
SEND_TIMEOUT = r"^conn \d+: peer took nothing for send_timeout \(%d s\): closing$"


# The core's own lines when the module refuses a send (tls_h_encode returns
# -1: a peer that took nothing for send_timeout, or free memory below
# low_mem_threshold2): the sender (a TCP reader running sl_send_reply) logs
# tcp_send's failure through sl, and TCP main logs the CON_ERROR that the
# sender reports.  Both at ERROR, both the core's (and sl's) wording, not
# the module's; one of each per connection.
CORE_SEND_ERRORS = [
    r"ERROR: sl \[\S+forward\.h:\d+\]: msg_send_buffer\(\): tcp_send failed$",
    r"ERROR: <core> \[core/tcp_main\.c:\d+\]: handle_ser_child\(\): "
    r"received CON_ERROR for \S+ \(id \d+\)",
]
# The same when the sender is the UDP worker running forward(): the core
# logs tcp_send's failure under its own name.
RELAY_ERRORS = [
    r"ERROR: <core> \[core/forward\.h:\d+\]: msg_send_buffer\(\): "
    r"tcp_send failed$",
]


# ------------------------------------------------------------------ server

def start(t, modparams=None, shm_mb=64, core=(), allow_errors=()):
    """A running Kamailio with this file's configuration; `core` are extra
    core settings ("name=value" lines)."""
    params = {"certificate": t.certs.server_cert,
              "private_key": t.certs.server_key,
              "tls_method": "TLSv1.2+"}
    params.update(modparams or {})
    return t.kamailio(params, allow_errors=allow_errors, shm_mb=shm_mb,
                      cfg=CFG, subst=[("CORE_EXTRA", "\n".join(core))])


def free_shm(server):
    """Free shared memory in bytes (`kamcmd core.shmmem`, field free)."""
    mem = harness.rpc_struct(server, "core.shmmem")
    assert "free" in mem, "core.shmmem shows no free field"
    return mem["free"]


def server_holds(server, client_port):
    """Whether the server still has its end of the connection from
    127.0.0.1:client_port open (/proc/net/tcp: ESTABLISHED or CLOSE_WAIT;
    after its close() the socket is in a FIN state or gone).

    Used instead of tls.list where pv_buffer_size is raised: tls.list
    allocates room for 10000 rows (6 MB of pkg memory) whatever the number
    of connections, and answers "500 - out of memory" once the pv buffers
    take their share of the 8 MB."""
    local = "0100007F:%04X" % server.tls_port
    remote = "0100007F:%04X" % client_port
    with open("/proc/net/tcp") as f:
        return any(fields[1] == local and fields[2] == remote
                   and fields[3] in ("01", "08")
                   for fields in (line.split() for line in f))


def tls_peers(server):
    """Peer addresses ("127.0.0.1:port") of the TLS connections listed by
    `kamcmd tls.list`."""
    return [row["peer"] for row in harness.tls_list(server)]


def module_lines(server, levels, *patterns, since=0):
    """The module's log lines at one of `levels` whose message matches every
    pattern, from byte offset `since` of the log on."""
    return server.logged(levels, *patterns, since=since, module="tls")


# ------------------------------------------------------------- the hog

def udp_request(server, header, count):
    """Sends the hog MESSAGE with `header: count` over UDP; waits for its
    200 (the route runs to the end before it answers)."""
    with harness.UdpClient(server.udp_port) as udp:
        udp.sock.settimeout(harness.RPC_TIMEOUT)
        udp.send(udp.build("MESSAGE", headers=[(header, str(count))]))
        reply = udp.sock.recv(65536)
    assert reply.startswith(b"SIP/2.0 200 "), reply[:80]


def hog_below(server, threshold_kb, margin=2 << 20):
    """Fills the hog table until free shared memory is `margin` below
    `threshold_kb`; returns the number of values stored."""
    free = free_shm(server)
    count = -(-(free - threshold_kb * 1024 + margin) // CHUNK)
    assert 0 < count <= 90, "%d values of the hog for %d free bytes" \
        % (count, free)
    udp_request(server, "X-Hog", count)
    free = free_shm(server)
    assert free < threshold_kb * 1024, \
        "the hog left %d KB free, not below %d KB" % (free // 1024,
                                                      threshold_kb)
    return count


def release(server, count):
    udp_request(server, "X-Release", count)


# ---------------------------------------------------------------- clients

def served(t, server):
    """A new client's OPTIONS is answered 200."""
    with t.connect(server) as conn:
        reply = conn.request(conn.build("OPTIONS"))
    assert reply.status == 200, reply
    return True


def ends(conn):
    """Whether the server ends the established connection `conn` at its
    next request (EOF, reset, or a TLS error instead of a reply)."""
    try:
        conn.request(conn.build("OPTIONS"))
    except (harness.ConnectionClosed, ConnectionResetError, BrokenPipeError,
            ssl.SSLError):
        return True
    return False


def wait_closed_tls(conn, what, bound=CLOSE_BOUND):
    """Waits, reading, until the server closes the idle TLS connection
    `conn` (close_notify, FIN or RST); fails the test past the bound."""
    end = time.monotonic() + bound
    conn.tls.settimeout(1)
    while time.monotonic() < end:
        try:
            data = conn.tls.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return
        if not data:
            return
        raise AssertionError("unexpected data on an idle connection: %r"
                             % data[:80])
    raise AssertionError("the server kept %s open for %d s" % (what, bound))


def wait_closed_raw(sock, what, bound=CLOSE_BOUND):
    """As wait_closed_tls for a plain TCP socket; returns what it read."""
    data = b""
    end = time.monotonic() + bound
    sock.settimeout(1)
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data
        if not chunk:
            return data
        data += chunk
    raise AssertionError("the server kept %s open for %d s" % (what, bound))


# ------------------------------------------------------- low_mem_threshold1

def test_limits_threshold1_refuses_new_connections_once_logged(t):
    """With -m 32 and low_mem_threshold1 at the whole shared memory, every
    new client is refused (EOF in the handshake), one WARNING for 20
    clients, no per-connection line."""
    clients = 20
    server = start(t, {"low_mem_threshold1": 32 * 1024}, shm_mb=32)
    ready = server.log_size()
    results = harness.run_threads(clients, lambda i: t.refusal(server))
    answered = [i for i, r in enumerate(results) if r is None]
    assert not answered, "clients %s were served below threshold 1" % answered
    others = [r for r in results
              if not isinstance(r, (ssl.SSLError, harness.ConnectionClosed,
                                    ConnectionResetError, BrokenPipeError))]
    assert not others, "unexpected client failures: %r" % others[:3]
    # And one after the others, when nothing else is going on.
    assert t.refusal(server) is not None
    warnings = module_lines(server, "WARNING", LOW1_WARNING)
    assert len(warnings) == 1, \
        "%d threshold 1 WARNING lines for %d clients:\n%s" % (
            len(warnings), clients + 1, "\n".join(warnings))
    since = module_lines(server, "[A-Z]+", "", since=ready)
    assert since == warnings, \
        "module lines besides the WARNING:\n%s" % "\n".join(since)
    # The refused connections are gone (listed as "-" while they exist).
    harness.poll("refused connections gone from tls.list",
                 lambda: not tls_peers(server))


def test_limits_threshold1_off_serves_clients(t):
    """The same shared memory with low_mem_threshold1=0: clients served."""
    server = start(t, {"low_mem_threshold1": 0}, shm_mb=32)
    results = harness.run_threads(20, lambda i: served(t, server))
    failed = [r for r in results if r is not True]
    assert not failed, "clients failed with threshold 1 off: %r" % failed[:3]
    assert not module_lines(server, "WARNING|NOTICE", "low_mem_threshold")


def test_limits_threshold1_recovers_when_memory_is_back(t):
    """Free memory pushed below threshold 1 while running: new clients
    refused with one WARNING, an established client goes on; memory back:
    one NOTICE and new clients served again."""
    threshold_kb = 16 * 1024
    server = start(t, {"low_mem_threshold1": threshold_kb,
                       "low_mem_threshold2": 0}, shm_mb=32)
    assert free_shm(server) > (threshold_kb + 4096) * 1024, \
        "too little free shared memory at start for this case"
    with t.connect(server) as old:
        assert old.request(old.build("OPTIONS")).status == 200
        count = hog_below(server, threshold_kb)
        for _ in range(5):
            assert t.refusal(server) is not None, "served below threshold 1"
        reply = old.request(old.build("OPTIONS"))
        assert reply.status == 200, "established client: %r" % reply
        release(server, count)
        assert free_shm(server) > threshold_kb * 1024
        for _ in range(5):
            served(t, server)
        assert old.request(old.build("OPTIONS")).status == 200
    warnings = module_lines(server, "WARNING", LOW1_WARNING)
    notices = module_lines(server, "NOTICE", LOW1_NOTICE)
    assert len(warnings) == 1, "\n".join(warnings) or "no WARNING"
    assert len(notices) == 1, "\n".join(notices) or "no NOTICE"


# ------------------------------------------------------- low_mem_threshold2

def test_limits_threshold2_ends_established_connections(t):
    """low_mem_threshold1=0, low_mem_threshold2 crossed while clients are
    established: each one's next request ends in EOF; the WARNING is
    logged once in all, not per connection nor per TCP reader."""
    threshold_kb = 16 * 1024
    clients = 12
    server = start(t, {"low_mem_threshold1": 0,
                       "low_mem_threshold2": threshold_kb}, shm_mb=32)
    assert free_shm(server) > (threshold_kb + 4096) * 1024, \
        "too little free shared memory at start for this case"
    conns = [t.connect(server) for _ in range(clients)]
    try:
        for conn in conns:
            assert conn.request(conn.build("OPTIONS")).status == 200
        ready = server.log_size()
        count = hog_below(server, threshold_kb)
        # One client alone first: exactly one line for it.
        assert ends(conns[0]), "established client answered below threshold 2"
        first = module_lines(server, "WARNING", LOW2_WARNING)
        assert len(first) == 1, "\n".join(first) or "no WARNING"
        ended = [ends(conn) for conn in conns[1:]]
        assert all(ended), "clients %s still answered below threshold 2" % [
            i + 1 for i, e in enumerate(ended) if not e]
        warnings = module_lines(server, "WARNING", LOW2_WARNING)
        if VERBOSE:
            print("    threshold 2: %d WARNING line(s) for %d connections"
                  % (len(warnings), clients))
        assert len(warnings) == 1, \
            "%d threshold 2 WARNING lines for %d connections:\n%s" % (
                len(warnings), clients, "\n".join(warnings))
        others = [line for line in module_lines(server, "[A-Z]+", "",
                                                since=ready)
                  if line not in warnings]
        assert not others, "other module lines:\n%s" % "\n".join(others)
        release(server, count)
        served(t, server)
    finally:
        for conn in conns:
            conn.close()


def test_limits_threshold2_fails_sends(t):
    """Below low_mem_threshold2 a send on an established connection fails:
    a request relayed by a UDP worker onto a client's TLS connection never
    arrives and the connection ends; one WARNING in that process."""
    threshold_kb = 16 * 1024
    server = start(t, {"low_mem_threshold1": 0,
                       "low_mem_threshold2": threshold_kb}, shm_mb=32,
                   allow_errors=CORE_SEND_ERRORS + RELAY_ERRORS)
    with t.connect(server) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200
        ready = server.log_size()
        count = hog_below(server, threshold_kb)
        with harness.UdpClient(server.udp_port) as udp:
            udp.send(udp.build("MESSAGE", body=b"relayed", headers=[
                ("X-Target", "127.0.0.1:%d" % conn.local_port)]))
        harness.poll("a module WARNING for the relayed send",
                     lambda: module_lines(server, "WARNING", LOW2_WARNING))
        wait_closed_tls(conn, "a connection whose send failed below "
                        "low_mem_threshold2")
    release(server, count)
    served(t, server)
    lines = module_lines(server, "[A-Z]+", "", since=ready)
    if VERBOSE:
        print("\n".join("    " + line for line in lines + [
            line for line in server._read_log(ready) if " ERROR: " in line]))
    warnings = module_lines(server, "WARNING", LOW2_WARNING)
    assert len(warnings) == 1, "\n".join(warnings)
    core = [line for line in server._read_log(ready)
            if any(re.search(p, line) for p in CORE_SEND_ERRORS + RELAY_ERRORS)]
    assert len(core) <= 2, "core lines for one send:\n%s" % "\n".join(core)


# ------------------------------------------------------------- automatic

# low_mem_threshold1/2 = -1: these fractions of the shared memory (README,
# "TLS and low memory": a tenth and a fortieth).
AUTO_DIVISORS = (10, 40)


def test_limits_automatic_thresholds_logged(t):
    """-1: a tenth and a fortieth of the shared memory, in KB, logged at
    start (the default is -1 too)."""
    for shm_mb, params in ((32, {"low_mem_threshold1": -1,
                                 "low_mem_threshold2": -1}),
                           (64, {})):
        server = start(t, params, shm_mb=shm_mb)
        size = shm_mb << 20
        lines = server.logged("INFO", THRESHOLDS)
        assert len(lines) == 1, "\n".join(lines) or "no thresholds line"
        m = re.search(THRESHOLDS[1:], lines[0])
        assert (int(m.group(1)), int(m.group(2))) == \
            tuple(size // d // 1024 for d in AUTO_DIVISORS), lines[0]
        served(t, server)
    server = start(t, {"low_mem_threshold1": 8192, "low_mem_threshold2": 0})
    lines = server.logged("INFO", THRESHOLDS)
    assert len(lines) == 1 and re.search(r"below 8192 KB free, "
                                         r"established below 0 KB$",
                                         lines[0]), lines


# ------------------------------------------------------ handshake_timeout


# What a server may send when it gives up on a handshake: nothing, or one
# plaintext fatal alert record (content type 21, TLS 1.2 record version).
def only_an_alert(data):
    return not data or (len(data) == 7 and data[0] == 0x15
                        and data[5] == 2)

def test_limits_handshake_timeout_closes_silent_client(t):
    """handshake_timeout=2: a client that connects and sends nothing is
    closed by the server (the core's timer; expected after handshake_timeout
    plus the reader's 5 s idle period, polled up to 30 s); a normal client
    is served meanwhile and after."""
    server = start(t, {"handshake_timeout": 2})
    served(t, server)
    silent = socket.create_connection(("127.0.0.1", server.tls_port),
                                      timeout=harness.IO_TIMEOUT)
    port = silent.getsockname()[1]
    try:
        served(t, server)
        data = wait_closed_raw(silent, "a client that sent nothing "
                               "(handshake_timeout 2 s)")
        assert only_an_alert(data), \
            "the server sent %r to a silent client" % data[:80]
    finally:
        silent.close()
    harness.poll("silent connection closed by the server",
                 lambda: not server_holds(server, port))
    served(t, server)
    # At most one line for it (none is required: no read saw the timeout).
    lines = module_lines(server, "[A-Z]+", ":%d " % port)
    assert len(lines) <= 1, "\n".join(lines)


def test_limits_handshake_timeout_closes_stalled_client(t):
    """handshake_timeout=2: a client that sends the first bytes of a
    ClientHello and then nothing is closed by the server (the core's idle
    lifetime once its reader lets it go); a normal client is served
    meanwhile and after."""
    server = start(t, {"handshake_timeout": 2})
    served(t, server)
    stalled = socket.create_connection(("127.0.0.1", server.tls_port),
                                       timeout=harness.IO_TIMEOUT)
    port = stalled.getsockname()[1]
    try:
        stalled.sendall(harness.client_hello()[:20])
        served(t, server)
        data = wait_closed_raw(stalled, "a client that stopped in its "
                               "ClientHello (handshake_timeout 2 s)")
        assert only_an_alert(data), "the server sent %r" % data[:80]
    finally:
        stalled.close()
    harness.poll("stalled connection closed by the server",
                 lambda: not server_holds(server, port))
    served(t, server)
    lines = module_lines(server, "[A-Z]+", ":%d " % port)
    assert len(lines) <= 1, "\n".join(lines)


def test_limits_handshake_timeout_closes_trickling_client(t):
    """handshake_timeout=2: a client that trickles a ClientHello, one byte
    a second, is closed at a read after the timeout, with one INFO line; a
    normal client is served meanwhile and after."""
    server = start(t, {"handshake_timeout": 2})
    served(t, server)
    hello = harness.client_hello()
    trickle = socket.create_connection(("127.0.0.1", server.tls_port),
                                       timeout=harness.IO_TIMEOUT)
    port = trickle.getsockname()[1]
    try:
        closed = None
        sent = 0
        end = time.monotonic() + CLOSE_BOUND
        trickle.settimeout(1)       # the pace: one byte per recv timeout
        while time.monotonic() < end and sent < len(hello) - 1:
            try:
                trickle.sendall(hello[sent:sent + 1])
            except (BrokenPipeError, ConnectionResetError) as exc:
                closed = "send: %r" % exc
                break
            sent += 1
            try:
                data = trickle.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError as exc:
                closed = "recv: %r" % exc
                break
            assert only_an_alert(data), "the server sent %r" % data[:80]
            closed = "EOF"
            break
        assert closed, ("the trickling client was still connected after "
                        "%d bytes of %d" % (sent, len(hello)))
        served(t, server)
    finally:
        trickle.close()
    harness.poll("trickling connection closed by the server",
                 lambda: not server_holds(server, port))
    served(t, server)
    lines = module_lines(server, "[A-Z]+", ":%d " % port)
    assert len(lines) == 1 and re.search(HANDSHAKE_TIMEOUT % 2, lines[0]) \
        and harness.LOG_LINE.match(lines[0])["level"] == "INFO", \
        "lines for the trickling client:\n%s" % ("\n".join(lines) or "none")


# ----------------------------------------------------- connection_timeout

def test_limits_connection_timeout_closes_idle(t):
    """connection_timeout=3: an idle established connection is closed by the
    server; others are still served."""
    server = start(t, {"connection_timeout": 3})
    with t.connect(server) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200
        port = conn.local_port
        wait_closed_tls(conn, "an idle connection (connection_timeout "
                        "3 s)")
    harness.poll("closed connection gone from tls.list",
                 lambda: "127.0.0.1:%d" % port not in tls_peers(server))
    served(t, server)


def test_limits_connection_timeout_never(t):
    """connection_timeout=-1: a connection idle for 12 s is still open (it
    answers an OPTIONS)."""
    server = start(t, {"connection_timeout": -1})
    with t.connect(server) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200
        port = conn.local_port
        time.sleep(12)
        assert "127.0.0.1:%d" % port in tls_peers(server), \
            "the idle connection is not listed any more"
        reply = conn.request(conn.build("OPTIONS"))
        assert reply.status == 200, reply


# ---------------------------------------------------------- send_timeout

def stuck_reader(t, core_send_timeout):
    """A client that sends MESSAGEs with 60 KB replies and never reads
    (small receive buffer), against send_timeout=2 and the core's
    tcp_send_timeout; returns the server once the connection has ended
    (the client read what was sent, then EOF or reset), another client
    having been served meanwhile.  Fails if the server keeps it."""
    burst = 64      # replies (~3.9 MB) to fill the kernel's buffers first
    server = start(t, {"send_timeout": 2}, allow_errors=CORE_SEND_ERRORS,
                   core=[
        # set_reply_body() prints its body through the pv buffer (8 KB by
        # default).  (Its pkg memory leaves too little for tls.list, see
        # server_holds().)
        "pv_buffer_size=131072",
        "tcp_send_timeout=%d" % core_send_timeout,
        # Room for the replies to pile up in the core's queue instead of
        # the queue filling up first (32 KB by default).
        "tcp_conn_wq_max=4194304",
        "tcp_wq_max=16777216",
        # The replies to requests read after the connection is closed must
        # not open a new connection to the client's port.
        "tcp_no_connect=yes",
    ])
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(harness.IO_TIMEOUT)
    raw.connect(("127.0.0.1", server.tls_port))
    ctx = harness.client_context(t.certs.ca_cert)
    stuck = ctx.wrap_socket(raw)
    port = stuck.getsockname()[1]
    server.ready_offset = server.log_size()
    served_meanwhile = 0
    try:
        gone = None
        sent = 0
        end = time.monotonic() + CLOSE_BOUND
        while time.monotonic() < end:
            try:
                stuck.sendall(harness.sip_request(
                    "MESSAGE", server.tls_port, port, cseq=sent + 1,
                    headers=[("X-Big", "1")]))
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError,
                    socket.timeout) as exc:
                gone = "send failed: %r" % exc
                break
            sent += 1
            if sent < burst:
                continue
            if not server_holds(server, port):
                gone = "closed by the server"
                break
            if (sent - burst) % 5 == 0:
                served(t, server)       # while the replies pile up
                served_meanwhile += 1
            time.sleep(0.2)
        assert gone, "the non-reading client was still connected after " \
            "%d requests" % sent
        # What it finally reads ends (EOF or reset) within the bound.
        got = 0
        end = time.monotonic() + CLOSE_BOUND
        stuck.settimeout(1)
        while True:
            assert time.monotonic() < end, "still reading after %d s" \
                % CLOSE_BOUND
            try:
                chunk = stuck.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                break
            if not chunk:
                break
            got += len(chunk)
    finally:
        stuck.close()
    harness.poll("stuck connection closed by the server",
                 lambda: not server_holds(server, port))
    served(t, server)
    served_meanwhile += 1
    if VERBOSE:
        print("    %d requests, %s, %d bytes read after, %d served meanwhile"
              % (sent, gone, got, served_meanwhile))
    return server


def stuck_reader_lines(server):
    """The module's lines and the core's CORE_SEND_ERRORS lines logged since
    the stuck client connected; at most one module line, and each core line
    at most once."""
    lines = module_lines(server, "[A-Z]+", "", since=server.ready_offset)
    core = [line for line in server._read_log(server.ready_offset)
            if any(re.search(p, line) for p in CORE_SEND_ERRORS)]
    if VERBOSE:
        print("\n".join("    " + line for line in lines + core))
    assert len(lines) <= 1, "module lines for one connection:\n%s" \
        % "\n".join(lines)
    assert len(core) <= len(CORE_SEND_ERRORS), \
        "core lines for one connection:\n%s" % "\n".join(core)
    return lines


def test_limits_send_timeout_peer_not_reading(t):
    """send_timeout=2 with the core's tcp_send_timeout=3: whichever acts
    first, the connection of a peer that stopped reading ends, others are
    served meanwhile, at most one module line for it."""
    stuck_reader_lines(stuck_reader(t, 3))


def test_limits_send_timeout_acts_before_core(t):
    """send_timeout=2 with the core's tcp_send_timeout=60: only the module
    can end the connection within the 30 s bound; it does, with its one INFO
    line."""
    lines = stuck_reader_lines(stuck_reader(t, 60))
    m = harness.LOG_LINE.match(lines[0]) if len(lines) == 1 else None
    assert m and m["level"] == "INFO" and \
        re.search(SEND_TIMEOUT % 2, m["message"]), \
        "no send_timeout INFO line: %r" % lines
