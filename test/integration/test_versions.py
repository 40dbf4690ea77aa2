"""Protocol versions: the module's default, and the 2007-era method names."""

from harness import BAD_LEVELS

# Tests of the module's own default leave tls_method unset.
DEFAULT_METHOD = {"tls_method": None}


def test_default_method_serves_tls12(t):
    server = t.kamailio(DEFAULT_METHOD)
    with t.connect(server, version="TLSv1.2") as conn:
        reply = conn.request(conn.build("OPTIONS"))
        assert conn.version == "TLSv1.2", conn.version
    assert reply.status == 200, reply


def test_default_method_serves_tls13(t):
    server = t.kamailio(DEFAULT_METHOD)
    with t.connect(server, version="TLSv1.3") as conn:
        reply = conn.request(conn.build("OPTIONS"))
        assert conn.version == "TLSv1.3", conn.version
    assert reply.status == 200, reply


def test_tls13_only_method_refuses_tls12_client(t):
    # A refused protocol version is the peer's doing: no ERROR line expected.
    server = t.kamailio({"tls_method": "TLSv1.3"})
    assert t.refusal(server, version="TLSv1.2"), "TLS 1.2 client served"
    with t.connect(server, version="TLSv1.3") as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200


def test_legacy_method_tlsv1_refused_or_mapped(t):
    # TLS 1.0 fails at OpenSSL 3's default security level and RFC 8996
    # forbids it: the module either refuses it or maps it to something
    # modern, and says so either way.
    server = t.launch({"tls_method": "TLSv1"})
    if not server.wait_ready():
        server.expect_errors(r"\bERROR:")
        assert server.proc.returncode != 0, "exited with status 0"
        assert server.logged(BAD_LEVELS, r"tls_method"), \
            "refused to start without a line naming tls_method"
        return
    assert server.logged("WARNING", r"tls_method"), \
        "accepted TLSv1 without a WARNING naming tls_method"
    with t.connect(server) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200


def test_legacy_method_sslv23_maps_to_modern_default(t):
    server = t.kamailio({"tls_method": "SSLv23"})
    assert server.logged("WARNING", r"tls_method|SSLv23"), \
        "SSLv23 accepted without a WARNING"
    with t.connect(server, version="TLSv1.3") as conn:
        reply = conn.request(conn.build("OPTIONS"))
    assert reply.status == 200, reply
