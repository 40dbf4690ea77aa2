"""Client certificates required and verified against ca_list.

A refused client is the peer's fault: the module must not log it at ERROR
(nor anything else at a bad level), so these tests declare no expected lines.
"""


def verifying_server(t):
    return t.kamailio({"require_certificate": 1, "verify_certificate": 1,
                       "ca_list": t.certs.ca_cert})


def test_trusted_client_certificate_accepted(t):
    server = verifying_server(t)
    for version in ("TLSv1.2", "TLSv1.3"):
        with t.connect(server, version, t.certs.client) as conn:
            reply = conn.request(conn.build("OPTIONS"))
        assert reply.status == 200, (version, reply)


def test_client_without_certificate_refused(t):
    server = verifying_server(t)
    for version in ("TLSv1.2", "TLSv1.3"):
        assert t.refusal(server, version), \
            "%s client without a certificate got an answer" % version
    with t.connect(server, client_cert=t.certs.client) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200, \
            "server stopped serving trusted clients"


def test_client_from_untrusted_ca_refused(t):
    server = verifying_server(t)
    for version in ("TLSv1.2", "TLSv1.3"):
        assert t.refusal(server, version, t.certs.untrusted_client), \
            "%s client with an untrusted certificate got an answer" % version
    with t.connect(server, client_cert=t.certs.client) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200, \
            "server stopped serving trusted clients"
