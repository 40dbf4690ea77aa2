"""Client certificates required and verified against ca_list.

A refused client is the peer's fault: the module must not log it at ERROR
(nor anything else at a bad level), so these tests declare no expected lines.
"""

import socket
import ssl

from harness import ConnectionClosed


def verifying_server(t):
    return t.kamailio({"require_certificate": 1, "verify_certificate": 1,
                       "ca_list": t.certs.ca_cert})


def refusal(t, server, version, client_cert):
    """How the server refused the client, or None if it answered.

    With TLS 1.2 the handshake fails; with TLS 1.3 the client finishes its
    side first and sees the server's alert (or EOF) on its first read."""
    try:
        with t.connect(server, version, client_cert) as conn:
            conn.request(conn.build("OPTIONS"))
    except (ssl.SSLError, ConnectionClosed, ConnectionResetError,
            BrokenPipeError) as exc:
        return exc
    except socket.timeout:
        raise AssertionError("server neither answered nor refused %s client"
                             % version) from None
    return None


def test_trusted_client_certificate_accepted(t):
    server = verifying_server(t)
    for version in ("TLSv1.2", "TLSv1.3"):
        with t.connect(server, version, t.certs.client) as conn:
            reply = conn.request(conn.build("OPTIONS"))
        assert reply.status == 200, (version, reply)


def test_client_without_certificate_refused(t):
    server = verifying_server(t)
    for version in ("TLSv1.2", "TLSv1.3"):
        assert refusal(t, server, version, None), \
            "%s client without a certificate got an answer" % version
    with t.connect(server, client_cert=t.certs.client) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200, \
            "server stopped serving trusted clients"


def test_client_from_untrusted_ca_refused(t):
    server = verifying_server(t)
    for version in ("TLSv1.2", "TLSv1.3"):
        assert refusal(t, server, version, t.certs.untrusted_client), \
            "%s client with an untrusted certificate got an answer" % version
    with t.connect(server, client_cert=t.certs.client) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200, \
            "server stopped serving trusted clients"
