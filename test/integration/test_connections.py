"""Many connections at once, and sending from a process other than the reader."""

from harness import UdpClient, run_threads

# A race between processes shows up in some bursts only; a few bursts make
# catching it likely without making the test slow.
BURSTS = 5


def test_fifty_concurrent_connections(t):
    # Half TLS 1.2, half TLS 1.3, all handshaking at once against the
    # readers, which share the server's RSA key.
    server = t.kamailio()

    def client(i):
        with t.connect(server, version=("TLSv1.2", "TLSv1.3")[i % 2]) as conn:
            return conn.request(conn.build("OPTIONS")).status

    for burst in range(BURSTS):
        results = run_threads(50, client)
        failures = [r for r in results if r != 200]
        assert not failures, "burst %d: %d of 50 clients failed, e.g. %r" \
            % (burst + 1, len(failures), failures[:3])


def test_udp_worker_sends_on_existing_tls_connection(t):
    server = t.kamailio()
    body = b"relayed by a UDP worker " * 40
    call_id = "udp-to-tls@integration.test"
    with t.connect(server) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200
        with UdpClient(server.udp_port) as udp:
            udp.send(udp.build("MESSAGE", body=body, call_id=call_id, headers=[
                ("X-Target", "127.0.0.1:%d" % conn.local_port)]))
        relayed = conn.read_message()
    assert relayed.method == "MESSAGE", relayed
    assert relayed.header("Call-ID") == call_id, relayed.header("Call-ID")
    assert relayed.body == body, "body changed on the way"
