"""The outbound (client) role: Kamailio relays a MESSAGE it received over
UDP to a real TLS peer (peers.TlsPeer) with t_relay(), and the module must
check the peer's certificate chain and identity (RFC 5922 section 7) before
anything is sent.

The routing script (CFG below, replacing the harness's configuration) relays
every UDP MESSAGE to 127.0.0.1:<X-Peer-Port header>;transport=tls, and first
sets $xavp(tls=>server_name) from the X-Server-Name header when the request
has one.  The peer answers 200 on the same connection, which tm relays back
to the UDP sender; a refused peer leaves tm to answer 408 when fr_timer
(3 s) fires.  No test asserts a duration.

The certificates are made here with `openssl ca` (which can back-date one),
once per run: a CA Kamailio trusts (client_ca_list), another CA it does not,
and a leaf per identity case.
"""

import os
import random
import re
import socket

import harness
import peers

HOST = "127.0.0.1"
NAME = "peer.example"
WILD_NAME = "peer.sip.example"

# A failed handshake: "<peer> (conn N): TLS handshake: <reason>" at tls_log
# (INFO by default).
MISMATCH = r"certificate name mismatch: expected %s, certificate has "

# ------------------------------------------------------------ certificates

# The leaves' extensions, beside harness.ca_issue()'s ca_ext.
_CNF = """\
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = {eku}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
{san}
"""

VALID = ("20240101000000Z", "20991231235959Z")
EXPIRED = ("20200101000000Z", "20210101000000Z")


class Cert:
    def __init__(self, path, key):
        self.path = path
        self.key = key


class Pki:
    """The certificates of the outbound tests (ECDSA P-256, quick to make;
    the client certificate Kamailio signs with is RSA)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca = self._cert("ca", "Outbound Test CA", None, ca=True)
        self.other_ca = self._cert("other-ca", "Unknown Outbound CA", None,
                                   ca=True)
        leaf = self._cert
        # Kamailio's own server certificate (it must listen on TLS to send
        # over TLS).
        self.kamailio = leaf("kamailio", "localhost", self.ca,
                             ["DNS:localhost", "IP:127.0.0.1"])
        self.dns = leaf("dns", "dns peer", self.ca, ["DNS:" + NAME])
        self.uri = leaf("uri", "uri peer", self.ca,
                        ["URI:sip:" + NAME, "DNS:other.example"])
        self.cn_only = leaf("cn", NAME, self.ca, [])
        self.wrong = leaf("wrong", "wrong peer", self.ca,
                          ["DNS:other.example"])
        # A matching CN must not count once there is any subjectAltName.
        self.cn_and_san = leaf("cn-san", NAME, self.ca,
                               ["DNS:other.example"])
        # A sip: URI with a user part names a user, not the domain.
        self.uri_user = leaf("uri-user", "uri user peer", self.ca,
                             ["URI:sip:alice@" + NAME])
        # OpenSSL's host check never lets a wildcard cover a single-label
        # suffix such as "*.example"; "*.sip.example" is the usable form.
        self.wildcard = leaf("wildcard", "wildcard peer", self.ca,
                             ["DNS:*.sip.example"])
        self.wildcard_tld = leaf("wildcard-tld", "wildcard tld peer",
                                 self.ca, ["DNS:*.example"])
        self.expired = leaf("expired", "expired peer", self.ca,
                            ["DNS:" + NAME], dates=EXPIRED)
        self.stranger = leaf("stranger", "stranger peer", self.other_ca,
                             ["DNS:" + NAME])
        self.stranger_wrong = leaf("stranger-wrong", "stranger wrong peer",
                                   self.other_ca, ["DNS:other.example"])
        self.ip = leaf("ip", "ip peer", self.ca, ["IP:127.0.0.1"])
        self.client = leaf("client", "outbound client", self.ca,
                           ["DNS:client.example"], eku="clientAuth",
                           rsa=True)

    def _cert(self, name, cn, issuer, sans=(), ca=False, dates=VALID,
              eku="serverAuth", rsa=False):
        d = os.path.join(self.dir, name)
        # 16 + the number of certificates made so far, this one included.
        serial = "%02X" % (len(os.listdir(self.dir)) + 17)
        san = "subjectAltName = " + ", ".join(sans) if sans else ""
        path, key = harness.ca_issue(
            d, _CNF.format(eku=eku, san=san), "/CN=" + cn, issuer,
            "ca_ext" if ca else "leaf_ext", serial, dates,
            "RSA" if rsa else "EC")
        return Cert(path, key)


def pki(t):
    """This run's outbound PKI, made on first use."""
    return t.session.shared("outbound-certs", Pki)


# --------------------------------------------------------------- Kamailio

CFG = harness.cfg_head("@GLOBALS@",
                       ["tm", "sl", "pv", "textops", "xlog"]) + """

modparam("tm", "fr_timer", 3000)
modparam("tm", "fr_inv_timer", 3000)

@TLS_MODPARAMS@

@EXTRA@

request_route {
	if ($pr != "udp" || !is_method("MESSAGE") || !is_present_hf("X-Peer-Port")) {
		sl_send_reply("404", "Not Found");
		exit;
	}
	if (is_present_hf("X-Server-Name")) {
		$xavp(tls=>server_name) = $hdr(X-Server-Name);
	}
	$du = "sip:127.0.0.1:" + $hdr(X-Peer-Port) + ";transport=tls";
	xlog("L_INFO", "relaying $rm $ci to $du\\n");
	if (!t_relay()) {
		sl_reply_error();
		exit;
	}
	# The xavp (now in the transaction) must come out of t_relay() intact:
	# a module writing into freed shared memory shows up here first.
	if (is_present_hf("X-Server-Name") && $xavp(tls=>server_name) == $null) {
		xlog("L_ERR", "XAVP-CHECK: tls=>server_name lost in t_relay() ($ci)\n");
	}
	exit;
}
"""


def kamailio(t, globals_=(), extra="", **params):
    """A running Kamailio with the relay script.  Client-role defaults:
    client_ca_list is the test CA, xavp_cfg "tls"; `params` override them
    (None removes one).  `globals_` are extra core settings lines."""
    p = pki(t)
    modparams = {"certificate": p.kamailio.path,
                 "private_key": p.kamailio.key,
                 "tls_method": "TLSv1.2+",
                 "client_ca_list": p.ca.path,
                 "xavp_cfg": "tls"}
    modparams.update(params)
    return t.kamailio(modparams, cfg=CFG,
                      subst=[("GLOBALS", "\n".join(globals_)),
                             ("EXTRA", extra)])


def relay(server, peer, server_name=None, body=b"hello over tls"):
    """Sends a MESSAGE over UDP for relaying to `peer`; returns (request
    bytes, Call-ID, final reply).  Provisional replies are skipped."""
    headers = [("X-Peer-Port", str(peer.port))]
    if server_name is not None:
        headers.append(("X-Server-Name", server_name))
    with harness.UdpClient(server.udp_port) as udp:
        udp.sock.settimeout(harness.IO_TIMEOUT)
        call_id = "%016x@outbound.test" % random.getrandbits(64)
        request = udp.build("MESSAGE", body=body, headers=headers,
                            call_id=call_id)
        udp.send(request)
        while True:
            try:
                data, _ = udp.sock.recvfrom(65535)
            except socket.timeout:
                raise AssertionError(
                    "no final reply to the UDP MESSAGE within %d s"
                    % harness.IO_TIMEOUT) from None
            reply, _ = peers.parse_message(data)
            assert reply is not None, "unparsable reply %r" % data[:200]
            if reply.header("Call-ID") != call_id:
                continue
            if reply.status >= 200:
                return request, call_id, reply


def accepted(server, peer, server_name=NAME, sni=NAME):
    """Relays one MESSAGE to `peer` and checks it arrived intact over a
    verified connection, with the expected SNI, and that 200 came back."""
    body = b"accepted? %d" % peer.port
    _, call_id, reply = relay(server, peer, server_name, body)
    assert reply.status == 200, "UDP sender got %s" % reply.start_line
    assert len(peer.connections) == 1, peer.connections
    conn = peer.connections[0]
    assert conn.handshake_ok, conn
    assert conn.sni == sni, "peer saw SNI %r, want %r" % (conn.sni, sni)
    assert len(conn.messages) == 1, conn.messages
    got = conn.messages[0]
    assert got.method == "MESSAGE", got
    assert got.header("Call-ID") == call_id, got.header("Call-ID")
    assert got.body == body, got.body
    assert server.logged("INFO|NOTICE|WARNING|ERROR", r"TLS handshake") \
        == [], "a handshake failure was logged"
    return conn


def refused(server, peer, server_name=NAME, reason=None):
    """Relays one MESSAGE to `peer` and checks the peer never got it, the
    UDP sender got an error reply, and the module logged exactly one
    handshake failure for the connection, at INFO, matching `reason`.
    Returns that line."""
    _, _, reply = relay(server, peer, server_name)
    assert reply.status >= 400, "UDP sender got %s" % reply.start_line
    assert peer.wait_closed(1), "the refused connection stayed open"
    assert peer.messages == [], "peer received %s" % peer.messages
    assert len(peer.connections) == 1, peer.connections
    assert not peer.connections[0].handshake_ok, peer.connections[0]
    pattern = r"127\.0\.0\.1:%d \(conn \d+\): TLS handshake: " % peer.port
    lines = server.logged(r"[A-Z]+", pattern)
    assert len(lines) == 1, "want one handshake line, got %s" % (
        lines or "none")
    assert harness.LOG_LINE.match(lines[0])["level"] == "INFO", lines[0]
    if reason:
        assert server.logged("INFO", pattern + ".*" + reason), \
            "handshake line %r does not match %r" % (lines[0], reason)
    return lines[0]


# ------------------------------------------------------------------- tests

def test_outbound_dns_name_matches(t):
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.dns.path, p.dns.key) as peer:
        accepted(server, peer)


def test_outbound_sip_uri_san_matches(t):
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.uri.path, p.uri.key) as peer:
        accepted(server, peer)


def test_outbound_cn_only_matches(t):
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.cn_only.path, p.cn_only.key) as peer:
        accepted(server, peer)


def test_outbound_wrong_name_refused(t):
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.wrong.path, p.wrong.key) as peer:
        line = refused(server, peer, reason=MISMATCH % r"peer\.example"
                       + r"DNS:other\.example$")
    assert len(server.logged(r"[A-Z]+", MISMATCH % r"peer\.example")) == 1, \
        line


def test_outbound_cn_ignored_when_san_present(t):
    """CN=peer.example but a subjectAltName DNS:other.example; and a sip:
    URI with a user part: neither names the domain (RFC 5922 7.1)."""
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.cn_and_san.path, p.cn_and_san.key) as peer:
        refused(server, peer, reason=MISMATCH % r"peer\.example")
    with peers.TlsPeer(p.uri_user.path, p.uri_user.key) as peer:
        refused(server, peer, reason=MISMATCH % r"peer\.example"
                + r"sip:alice@peer\.example$")


def test_outbound_wildcard_refused_by_default(t):
    """RFC 5922: no wildcards unless verify_wildcard=1."""
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.wildcard.path, p.wildcard.key) as peer:
        refused(server, peer, server_name=WILD_NAME,
                reason=MISMATCH % r"peer\.sip\.example"
                + r"DNS:\*\.sip\.example$")


def test_outbound_wildcard_accepted_with_verify_wildcard(t):
    """verify_wildcard=1: "*.sip.example" names peer.sip.example.  A
    wildcard over a single label ("*.example" for peer.example) stays
    refused: OpenSSL's host check, which the module documents it uses,
    never accepts one."""
    p = pki(t)
    server = kamailio(t, verify_wildcard=1)
    with peers.TlsPeer(p.wildcard.path, p.wildcard.key) as peer:
        accepted(server, peer, server_name=WILD_NAME, sni=WILD_NAME)
    with peers.TlsPeer(p.wildcard_tld.path, p.wildcard_tld.key) as peer:
        refused(server, peer,
                reason=MISMATCH % r"peer\.example" + r"DNS:\*\.example$")


def test_outbound_expired_certificate_refused(t):
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.expired.path, p.expired.key) as peer:
        refused(server, peer, reason=r"expired")


def test_outbound_unknown_ca_refused(t):
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.stranger.path, p.stranger.key) as peer:
        line = refused(server, peer)
    assert "mismatch" not in line, line
    assert "issuer" in line or "unknown ca" in line.lower(), line


def test_outbound_client_certificate_presented(t):
    p = pki(t)
    server = kamailio(t, client_certificate=p.client.path,
                      client_private_key=p.client.key)
    with peers.TlsPeer(p.dns.path, p.dns.key, client_ca=p.ca.path) as peer:
        conn = accepted(server, peer)
    assert conn.client_cert, "peer saw no client certificate"
    subject = dict(x[0] for x in conn.client_cert["subject"])
    assert subject.get("commonName") == "outbound client", subject


def test_outbound_client_certificate_missing_refused(t):
    """The peer requires a client certificate and Kamailio has none: the
    peer's handshake fails, it never gets the request, and the sender gets
    an error reply.  Under TLS 1.2 the refusal ends Kamailio's handshake;
    under TLS 1.3 Kamailio's side of the handshake completes before the
    peer's alert arrives, so the module's line comes from SSL_read.  One
    Kamailio per version (see test_outbound_name_survives_peer_alert)."""
    p = pki(t)
    for version, what in (("TLSv1.2", "TLS handshake"),
                          ("TLSv1.3", "SSL_read")):
        server = kamailio(t)
        with peers.TlsPeer(p.dns.path, p.dns.key, client_ca=p.ca.path,
                           version=version) as peer:
            _, _, reply = relay(server, peer, NAME)
            assert reply.status >= 400, (version, reply.start_line)
            assert peer.wait_closed(1), "the connection stayed open"
            assert len(peer.connections) == 1, peer.connections
            conn = peer.connections[0]
            assert not conn.handshake_ok, conn
            assert conn.sni == NAME, conn.sni
            assert peer.messages == [], peer.messages
        lines = server.logged(r"[A-Z]+", r"127\.0\.0\.1:%d \(conn \d+\)"
                              % peer.port)
        assert len(lines) == 1, (version, lines)
        m = harness.LOG_LINE.match(lines[0])
        assert m["level"] == "INFO", lines
        assert re.search(r"\): %s: .*alert" % what, m["message"]), lines


def test_outbound_name_survives_peer_alert(t):
    """After a peer refused Kamailio with an alert (here: no client
    certificate), the next relays must still use the script's server name,
    and the script's xavp must come out of t_relay() intact (the CFG logs
    XAVP-CHECK at ERROR otherwise).

    Regression test for shared-memory corruption: every child inherits the
    main process's OpenSSL error state (private memory) whose err_data slot
    points to one error-text buffer in shared memory.  A process receiving
    an alert reallocates that buffer (freeing the chunk); the chunk is then
    reused, e.g. for the next request's xavp, and ERR_clear_error() in any
    other process writes a NUL into its first byte.  Seen: the xavp's hash
    id zeroed, so the connection went out without SNI, expecting
    127.0.0.1, or (when the module reads the name before clearing) the
    xavp lost right after.  Which object gets hit depends on shared-memory
    reuse."""
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.dns.path, p.dns.key, client_ca=p.ca.path) as peer:
        _, _, reply = relay(server, peer, NAME)
        assert reply.status >= 400, reply.start_line
    for i in range(3):          # both UDP workers, and once more
        with peers.TlsPeer(p.dns.path, p.dns.key) as peer:
            _, _, reply = relay(server, peer, NAME)
            conn = peer.connections[0] if peer.connections else None
            assert reply.status == 200 and conn and conn.sni == NAME, (
                "relay %d after the alert: reply %s, peer saw %s; %s"
                % (i + 1, reply.start_line, conn, server.logged(
                    "NOTICE|INFO", r"no server name set|TLS handshake")))


def test_outbound_refused_peer_blocklisted(t):
    """With use_dst_blocklist, a failed handshake blocklists the peer like a
    failed TCP connect: the next relay there fails at once, without a new
    connection."""
    p = pki(t)
    server = kamailio(t, globals_=["use_dst_blocklist=yes"])
    # tm reports the send it could not make (a core line, not the module's).
    server.expect_errors(r"ERROR: tm \[t_fwd\.c:\d+\]: ",
                         r"ERROR: tm \[tm\.c:\d+\]: ",
                         r"ERROR: sl \[sl_funcs\.c:\d+\]: ")
    with peers.TlsPeer(p.wrong.path, p.wrong.key) as peer:
        refused(server, peer, reason=MISMATCH % r"peer\.example")
        _, _, reply = relay(server, peer, NAME)
        assert reply.status >= 400, reply.start_line
        assert len(peer.connections) == 1, \
            "a blocklisted peer was connected again: %s" % peer.connections


def test_outbound_client_server_name_param(t):
    p = pki(t)
    server = kamailio(t, client_server_name=NAME)
    with peers.TlsPeer(p.dns.path, p.dns.key) as peer:
        accepted(server, peer, server_name=None)
    with peers.TlsPeer(p.wrong.path, p.wrong.key) as peer:
        refused(server, peer, server_name=None,
                reason=MISMATCH % r"peer\.example")


def test_outbound_xavp_overrides_client_server_name(t):
    p = pki(t)
    server = kamailio(t, client_server_name="other.example")
    with peers.TlsPeer(p.dns.path, p.dns.key) as peer:
        accepted(server, peer, server_name=NAME)


def test_outbound_no_name_ip_san(t):
    """No server name anywhere: the destination IP is the expected identity
    (iPAddress SAN), no SNI is sent, and a NOTICE says so."""
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.ip.path, p.ip.key) as peer:
        accepted(server, peer, server_name=None, sni=None)
    notices = server.logged("NOTICE", r"127\.0\.0\.1:%d \(conn \d+\): "
                            r"no server name set" % peer.port,
                            r"IP address 127\.0\.0\.1")
    assert len(notices) == 1, notices
    with peers.TlsPeer(p.dns.path, p.dns.key) as peer:
        refused(server, peer, server_name=None,
                reason=MISMATCH % r"127\.0\.0\.1" + r"DNS:peer\.example$")
        assert peer.connections[0].sni is None, peer.connections[0].sni


def test_outbound_ip_name_needs_ip_san(t):
    """An IP literal as the script's name matches only an iPAddress SAN and
    is never sent as SNI."""
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.ip.path, p.ip.key) as peer:
        accepted(server, peer, server_name=HOST, sni=None)


def test_outbound_connection_reused(t):
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.dns.path, p.dns.key) as peer:
        first = relay(server, peer, NAME, b"first")
        second = relay(server, peer, NAME, b"second")
        assert first[2].status == 200, first[2].start_line
        assert second[2].status == 200, second[2].start_line
        assert len(peer.connections) == 1, peer.connections
        got = peer.connections[0].messages
        assert [m.header("Call-ID") for m in got] == [first[1], second[1]], \
            got
        assert [m.body for m in got] == [b"first", b"second"]


def test_outbound_verify_off_accepts_anything(t):
    """client_verify_certificate=0: a wrong name from an unknown CA is
    accepted (the name is still sent as SNI)."""
    p = pki(t)
    server = kamailio(t, client_verify_certificate=0)
    with peers.TlsPeer(p.stranger_wrong.path, p.stranger_wrong.key) as peer:
        accepted(server, peer)


def test_outbound_tls12_only_peer(t):
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.dns.path, p.dns.key, version="TLSv1.2") as peer:
        conn = accepted(server, peer)
    assert conn.version == "TLSv1.2", conn.version


def test_outbound_tls13_only_peer(t):
    p = pki(t)
    server = kamailio(t)
    with peers.TlsPeer(p.dns.path, p.dns.key, version="TLSv1.3") as peer:
        conn = accepted(server, peer)
    assert conn.version == "TLSv1.3", conn.version


# ------------------------------------------------ event_route[tls:connection-out]

EVENT_ROUTE = """\
modparam("pv", "shvset", "deny=i:%d")
event_route[tls:connection-out] {
	xlog("L_INFO", "CONN-OUT to $si:$sp name=$tls_peer_server_name\\n");
	if ($sp == $shv(deny)) {
		drop;
	}
}
"""


def test_outbound_event_route_refuses_one_allows_another(t):
    """The route sees the destination and the name to be sent; drop refuses
    that connection only: the peer never sees it, the sender gets an error,
    and another destination is served."""
    p = pki(t)
    with peers.TlsPeer(p.dns.path, p.dns.key) as denied, \
            peers.TlsPeer(p.dns.path, p.dns.key) as allowed:
        server = kamailio(t, extra=EVENT_ROUTE % denied.port)
        # The core reports the refused send itself.
        server.expect_errors(r"tcp_send failed", r"sl_reply_error\(\)")
        _, _, reply = relay(server, denied, NAME)
        assert reply.status >= 400, "UDP sender got %s" % reply.start_line
        # The TCP connect may have happened (the route runs on the new
        # connection), but no TLS handshake and no request.
        assert denied.messages == [], "the dropped peer got %s" % denied.messages
        assert not any(c.handshake_ok for c in denied.connections), \
            denied.connections
        assert server.logged("INFO", r"CONN-OUT to 127\.0\.0\.1:%d name=%s$"
                             % (denied.port, re.escape(NAME))), \
            "the route did not see the destination and the name"
        assert server.logged("INFO", r"127\.0\.0\.1:%d \(conn \d+\): refused"
                             r" by event_route\[tls:connection-out\]"
                             % denied.port)
        accepted(server, allowed)
        assert server.logged("INFO", r"CONN-OUT to 127\.0\.0\.1:%d name=%s$"
                             % (allowed.port, re.escape(NAME)))
