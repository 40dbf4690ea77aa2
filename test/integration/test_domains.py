"""The module's own configuration file (modparam "config"): TLS domains per
section, server domains chosen by SNI, by the listening address or as the
default, and the tls.* RPC commands.

Every server domain gets its own certificate, signed by the harness's test
CA, whose subject CN names it; a client reads back the certificate it was
given (Python's ssl, `openssl x509` for the subject), so a test sees which
domain served it, not just that a handshake worked.

RPC commands go through harness.rpc() (`kamcmd` and the ctl socket the
harness configuration opens).

The helpers here (start, peer_cn, ...) are also used by test_reload.py.
"""

import os
import re
import ssl

import harness

HOST = "127.0.0.1"
POLL_TIMEOUT = 10           # seconds any bounded wait polls for

# -------------------------------------------------------------- certificates

_LEAF_CNF = """\
[req]
distinguished_name = dn
[dn]
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:{dns}
"""


class Pki:
    """Leaf certificates (ECDSA P-256: quick to make) signed by the
    harness's test CA, so that harness.client_context() trusts them.  One
    per name, made on first use; leaf(name) -> (certificate, key)."""

    def __init__(self, directory, issuer):
        self.dir = directory
        self.issuer = issuer                    # (certificate, key)
        os.makedirs(directory, exist_ok=True)
        self._leaves = {}
        self._serial = 0x1000

    def leaf(self, name):
        """(certificate file, key file) of the leaf whose CN is `name`."""
        if name not in self._leaves:
            self._leaves[name] = self._make(name)
        return self._leaves[name]

    def _make(self, cn):
        self._serial += 1
        base = os.path.join(self.dir, "leaf%d" % self._serial)
        cnf = base + ".cnf"
        dns = re.sub(r"[^a-z0-9.-]", "-", cn.lower()).strip(".-") or "leaf"
        with open(cnf, "w") as f:
            f.write(_LEAF_CNF.format(dns=dns))
        key = harness.new_key(base + ".key", "EC")
        return harness.sign(base + ".pem", key, "/CN=" + cn, cnf, "leaf",
                            self.issuer, self._serial, days=30)


def pki(t):
    """This run's domain certificates."""
    return t.session.shared("domain-certs", lambda d: Pki(d, t.certs.ca))


def cert_cn(pem_path=None, der=None):
    """The subject CN of a certificate file or of DER bytes."""
    if der is not None:
        out = harness.openssl("x509", "-inform", "DER", "-noout",
                              "-subject", "-nameopt", "RFC2253", stdin=der)
    else:
        out = harness.openssl("x509", "-in", pem_path, "-noout", "-subject",
                              "-nameopt", "RFC2253")
    m = re.search(r"CN=([^,\n]*)", out)
    assert m, "no CN in %r" % out
    return m.group(1)


def peer_cn(conn):
    """The CN of the certificate the server presented on this connection."""
    return cert_cn(der=conn.tls.getpeercert(binary_form=True))


# ------------------------------------------------------------------- clients

def served_cn(t, server, sni=None, **kw):
    """Opens a connection (SNI `sni`), checks that it answers an OPTIONS
    with 200, and returns the CN of the certificate it got."""
    with t.connect(server, sni=sni, **kw) as conn:
        reply = conn.request(conn.build("OPTIONS"))
        assert reply.status == 200, "OPTIONS got %r" % reply
        return peer_cn(conn)


# ------------------------------------------------------------------ Kamailio

def start(t, cfg_text, modparams=None, must_start=True, allow_errors=()):
    """A Kamailio whose module reads `cfg_text` as its config file
    (written as tls.cfg beside kamailio.cfg; @PORT@ is replaced by the TLS
    port, @DIR@ by the folder).  The harness's certificate stays the
    modparam default unless `modparams` says otherwise.  Returns the
    server, running (must_start) or launched only."""
    params = {"certificate": t.certs.server_cert,
              "private_key": t.certs.server_key,
              "tls_method": "TLSv1.2+"}
    params.update(modparams or {})
    name = "kamailio%d" % len(t.servers)
    directory = os.path.join(t.dir, name)
    cfg = os.path.join(directory, "tls.cfg")
    params.setdefault("config", cfg)
    server = harness.Kamailio(directory, t.dir, t.session.module, params,
                              allow_errors)
    server.tls_cfg = params["config"]
    write_cfg(server, cfg_text)
    t.servers.append(server)
    server.launch()
    if must_start and not server.wait_ready():
        raise AssertionError("kamailio exited during startup (status %s)"
                             % server.proc.returncode)
    return server


def write_cfg(server, text, path=None):
    """Writes the TLS config file of `server` (or `path`) in one rename,
    so that a reload never reads half a file."""
    path = path or server.tls_cfg
    text = text.replace("@PORT@", str(server.tls_port)) \
        .replace("@DIR@", server.dir)
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def line_of(text, needle, nth=1):
    """1-based line number of the nth line of text containing needle."""
    seen = 0
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == nth:
                return number
    raise AssertionError("%r not in the config text" % needle)


def section(header, **keys):
    """Config text of one section; keys with None values are left out."""
    lines = ["[%s]" % header]
    lines += ["%s = %s" % (k, v) for k, v in keys.items() if v is not None]
    return "\n".join(lines) + "\n"


def domain_keys(cert):
    """certificate/private_key keys of a (cert, key) pair."""
    return {"certificate": cert[0], "private_key": cert[1]}


def cfg_error_lines(server, level="ERROR"):
    """Log lines at `level` that name the TLS config file as file:line."""
    return server.logged(level, re.escape(server.tls_cfg) + r":\d+: ")


# =================================================================== tests

def _sni_cfg(p, t):
    return (section("server:default", **domain_keys(p.leaf("dom default")))
            + section("server:any", server_name="a.example",
                      **domain_keys(p.leaf("dom a")))
            # The longer wildcard first: file order must not matter.
            + section("server:any", server_name="*.x.b.example",
                      **domain_keys(p.leaf("dom wild x.b")))
            + section("server:any", server_name="*.b.example, c.example",
                      **domain_keys(p.leaf("dom wild b")))
            + section("server:any", server_name="nosni.example",
                      sni_default="yes",
                      **domain_keys(p.leaf("dom sni default"))))


def test_domain_sni_selection(t):
    """SNI picks the domain: exact name, else the wildcard covering one
    leftmost label; no SNI goes to the sni_default domain, an unknown
    name to [server:default]."""
    p = pki(t)
    server = start(t, _sni_cfg(p, t))
    expected = [
        ("a.example", "dom a"),
        ("A.Example", "dom a"),                 # names are case-insensitive
        ("c.example", "dom wild b"),            # second name of a list
        ("y.b.example", "dom wild b"),
        ("x.b.example", "dom wild b"),          # *.b.example covers x.b
        ("y.x.b.example", "dom wild x.b"),      # the more specific wildcard
        ("b.example", "dom default"),           # a wildcard needs a label
        ("z.y.b.example", "dom default"),       # one label only
        ("nosni.example", "dom sni default"),
        (None, "dom sni default"),              # no SNI at all
        ("unknown.example", "dom default"),
    ]
    got = [(sni, served_cn(t, server, sni)) for sni, _ in expected]
    assert got == expected, "SNI -> certificate CN:\n  got      %r\n  " \
        "expected %r" % (got, expected)


def test_domain_sni_tls_method(t):
    """A domain chosen by SNI brings its own tls_method: the version is
    settled by the domain the client names, not by the default one."""
    p = pki(t)
    cfg = (section("server:default", tls_method="TLSv1.2+",
                   **domain_keys(p.leaf("dom default")))
           + section("server:any", server_name="v13.example",
                     tls_method="TLSv1.3", **domain_keys(p.leaf("dom v13")))
           + section("server:any", server_name="v12.example",
                     tls_method="TLSv1.2", **domain_keys(p.leaf("dom v12"))))
    server = start(t, cfg)
    # TLS 1.3 only for v13.example: a TLS 1.2 client naming it is refused.
    assert t.refusal(server, "TLSv1.2", sni="v13.example") is not None, \
        "TLS 1.2 client served by a TLSv1.3 domain"
    with t.connect(server, sni="v13.example") as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200
        assert peer_cn(conn) == "dom v13" and conn.version == "TLSv1.3", \
            (peer_cn(conn), conn.version)
    # TLS 1.2 only for v12.example: a client that could do 1.3 gets 1.2.
    with t.connect(server, sni="v12.example") as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200
        assert peer_cn(conn) == "dom v12" and conn.version == "TLSv1.2", \
            (peer_cn(conn), conn.version)
    # The default domain still takes both.
    assert served_cn(t, server, "other.example", version="TLSv1.2") \
        == "dom default"
    assert served_cn(t, server, None, version="TLSv1.3") == "dom default"


def test_domain_address_selection(t):
    """Without an sni_default domain, a client that sends no SNI (or an
    unknown name) gets the domain of the listening address; a domain for
    another address or port is not used."""
    p = pki(t)
    cfg = (section("server:default", **domain_keys(p.leaf("dom default")))
           + section("server:127.0.0.2:@PORT@",
                     **domain_keys(p.leaf("dom other ip")))
           + section("server:127.0.0.1:1", **domain_keys(p.leaf("dom port 1")))
           + section("server:127.0.0.1:@PORT@",
                     **domain_keys(p.leaf("dom listen")))
           + section("server:any", server_name="a.example",
                     **domain_keys(p.leaf("dom a"))))
    server = start(t, cfg)
    expected = [(None, "dom listen"), ("unknown.example", "dom listen"),
                ("a.example", "dom a")]
    got = [(sni, served_cn(t, server, sni)) for sni, _ in expected]
    assert got == expected, "got %r, expected %r" % (got, expected)

    # And with no address domain for this port, [server:default] serves.
    cfg2 = (section("server:default", **domain_keys(p.leaf("dom default")))
            + section("server:127.0.0.1:1",
                      **domain_keys(p.leaf("dom port 1"))))
    server2 = start(t, cfg2)
    assert served_cn(t, server2) == "dom default"


def test_domain_kamailio_style_aliases(t):
    """A file written with the 2007 key names (tls_method, verify_cert,
    require_cert, pkey_file, cert_file, calist_file) loads and serves with
    those settings."""
    p = pki(t)
    cert, key = p.leaf("dom alias")
    cfg = ("# written with the old key names\n"
           "[server:default]\n"
           "tls_method = TLSv1.3\n"
           "verify_cert = yes\n"
           "require_cert = yes\n"
           "cert_file = %s\n"
           "pkey_file = %s\n"
           "calist_file = %s\n" % (cert, key, t.certs.ca_cert))
    server = start(t, cfg)
    with t.connect(server, client_cert=t.certs.client) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200
        assert peer_cn(conn) == "dom alias"
        assert conn.version == "TLSv1.3"
        row = harness.list_entry(server, conn)
        assert row["verified"] == "yes", row
    # require_cert: no client certificate, no service.
    assert t.refusal(server) is not None, "client without certificate served"
    # tls_method = TLSv1.3: a TLS 1.2 client is refused.
    assert t.refusal(server, version="TLSv1.2",
                     client_cert=t.certs.client) is not None, \
        "TLS 1.2 client served despite tls_method = TLSv1.3"
    dom = [d for d in harness.structs(harness.rpc_ok(server, "tls.domains"))
           if d["domain"] == "server:default"]
    assert len(dom) == 1, dom
    assert dom[0]["tls_method"] == "TLSv1.3" and dom[0]["verify"] == "yes", \
        dom[0]
    assert dom[0]["source"] == "%s:2" % server.tls_cfg, dom[0]


def test_domain_missing_keys_from_modparams(t):
    """Keys a section leaves out come from the module parameters: here
    ca_list (the section only sets verify/require) and, for a name-based
    section without any certificate, the modparam certificate."""
    p = pki(t)
    cfg = (section("server:default", verify_certificate="yes",
                   require_certificate="yes",
                   **domain_keys(p.leaf("dom verify")))
           + section("server:any", server_name="m.example"))
    server = start(t, cfg, {"ca_list": t.certs.ca_cert})
    # A client certificate from the modparam CA is accepted.
    with t.connect(server, client_cert=t.certs.client) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200
        assert peer_cn(conn) == "dom verify"
        assert harness.list_entry(server, conn)["verified"] == "yes"
    # None, or one from another CA, is not.
    assert t.refusal(server) is not None, "client without certificate served"
    assert t.refusal(server, client_cert=t.certs.untrusted_client) \
        is not None, "client certificate from an unknown CA accepted"
    # m.example has no certificate of its own: the modparam one (CN
    # localhost), and the modparam verify settings (off).
    assert served_cn(t, server, "m.example") == "localhost"


def _startup_error(t, cfg_text, lines, *patterns):
    """Starts Kamailio on a bad config file; it must exit non-zero after
    exactly one ERROR line naming the file and one of `lines` (the line
    numbers accepted) whose text matches every pattern.  Returns the
    message."""
    server = start(t, cfg_text, must_start=False,
                   allow_errors=[r"\bERROR:"])
    status = server.wait_exit()
    assert status != 0, "kamailio exited 0 on a bad config file"
    found = cfg_error_lines(server)
    assert len(found) == 1, "ERROR lines naming %s: %r" % (server.tls_cfg,
                                                            found)
    # The core adds its own "Error while initializing module" lines; the
    # module itself says it once.
    mine = [line for line in server.logged("ERROR", "") if " tls [" in line]
    assert mine == found, "module ERROR lines: %r" % mine
    m = re.search(re.escape(server.tls_cfg) + r":(\d+): (.*)", found[0])
    assert int(m.group(1)) in lines, "line %s named, expected one of %r: %s" \
        % (m.group(1), lines, found[0])
    for pattern in patterns:
        assert re.search(pattern, m.group(2)), \
            "%r not in %r" % (pattern, found[0])
    return m.group(2)


def test_domain_startup_errors(t):
    """A bad file stops start-up with one ERROR line "file:line: ..."."""
    p = pki(t)
    good = domain_keys(p.leaf("dom default"))
    other = p.leaf("dom other")
    head = section("server:default", **good)

    text = head + "bogus_key = 1\n"
    _startup_error(t, text, [line_of(text, "bogus_key")],
                   r"unknown key 'bogus_key'")

    text = head + section("proxy:default", **good)
    _startup_error(t, text, [line_of(text, "[proxy")],
                   r"unknown section \[proxy:default\]")

    text = head + section("server:any", server_name="a.example",
                          verify_certificate="maybe")
    _startup_error(t, text, [line_of(text, "maybe")],
                   r"verify_certificate: bad value 'maybe'")

    text = head + "\n" + head
    _startup_error(t, text, [line_of(text, "[server:default]", 2)],
                   r"duplicate section \[server:default\]",
                   r"first on line 1")

    text = head + section("server:127.0.0.1:5061", **good) \
        + section("server:127.0.0.1:5061", **good)
    _startup_error(t, text, [line_of(text, "[server:127.0.0.1:5061]", 2)],
                   r"duplicate section \[server:127\.0\.0\.1:5061\]")

    text = head + section("server:any", server_name="a.example") \
        + section("server:any", server_name="b.example, a.example")
    _startup_error(t, text, [line_of(text, "b.example, a.example")],
                   r"'a\.example' is already served")

    missing = os.path.join(t.dir, "nowhere", "absent.pem")
    text = head + section("server:any", server_name="a.example",
                          certificate=missing, private_key=other[1])
    _startup_error(t, text, [line_of(text, missing)],
                   r"certificate: cannot read '%s'" % re.escape(missing),
                   r"No such file")

    text = head + section("server:any", server_name="a.example",
                          certificate=other[0],
                          private_key=good["private_key"])
    _startup_error(t, text, [line_of(text, good["private_key"], 2)],
                   r"private_key: '%s' does not match the certificate '%s'"
                   % (re.escape(good["private_key"]), re.escape(other[0])))

    # Errors found while loading a section name the key's own line.
    text = head + section("server:any", server_name="a.example",
                          certificate=other[0], private_key=other[1],
                          ca_list=other[1])
    _startup_error(t, text, [line_of(text, "ca_list")],
                   r"ca_list: '%s' holds no CA certificate"
                   % re.escape(other[1]))

    text = head + section("server:any", server_name="a.example",
                          certificate=other[0], private_key=other[1],
                          cipher_suites="TLS_NOPE")
    _startup_error(t, text, [line_of(text, "TLS_NOPE")],
                   r"cipher_suites: 'TLS_NOPE' matches no TLS 1\.3 suite")


def test_domain_rpc_commands(t):
    """tls.list, tls.info, tls.options, tls.domains and tls.kill."""
    p = pki(t)
    cfg = ("; RPC test\n"
           + section("server:default", **domain_keys(p.leaf("dom default")))
           + section("server:any", server_name="a.example, *.w.example",
                     verify_certificate="yes", ca_list=t.certs.ca_cert,
                     **domain_keys(p.leaf("dom a"))))
    server = start(t, cfg)

    info = harness.tls_info(server)
    assert info["generation"] == 1 and info["reloads"] == 0 \
        and info["reloads_failed"] == 0 and info["connections"] == 0, info

    a = t.connect(server, client_cert=t.certs.client, sni="a.example")
    d = t.connect(server)
    try:
        for conn in (a, d):
            assert conn.request(conn.build("OPTIONS")).status == 200

        # tls.list
        row = harness.list_entry(server, a)
        want = {"local": "%s:%d" % (HOST, server.tls_port),
                "role": "server", "state": "established",
                "version": a.version, "cipher": a.tls.cipher()[0],
                "domain": "server:any(a.example)", "sni": "a.example",
                "verified": "yes"}
        assert {k: row[k] for k in want} == want, \
            "tls.list row %r, expected %r" % (row, want)
        assert isinstance(row["id"], int) and row["id"] > 0, row
        assert isinstance(row["age"], int) and row["age"] >= 0, row
        assert isinstance(row["idle"], int) and row["idle"] >= 0, row
        row_d = harness.list_entry(server, d)
        assert (row_d["domain"], row_d["sni"], row_d["verified"],
                row_d["version"]) == ("server:default", "", "no",
                                      d.version), row_d

        # tls.info; a refused client (unknown CA) counts as a failure.
        assert t.refusal(server, client_cert=t.certs.untrusted_client,
                         sni="a.example") is not None
        info = harness.poll("tls.info with 2 established connections",
                            lambda: (lambda i: i if i["established"] == 2
                                     and i["connections"] == 2 else None)(
                                         harness.tls_info(server)),
                            POLL_TIMEOUT)
        assert info["handshakes_ok"] == 2, info
        assert info["handshakes_failed"] == 1, info
        assert info["handshaking"] == 0 and info["generation"] == 1, info
        assert info["max_connections"] > 0, info

        # tls.options
        opts = harness.rpc_struct(server, "tls.options")
        assert opts["config"] == server.tls_cfg, opts
        assert opts["certificate"] == t.certs.server_cert, opts
        assert opts["auto_reload"] == 0 and opts["tls_method"] == "TLSv1.2+", \
            opts

        # tls.domains: both file sections with file:line, the client
        # default from the module parameters.
        doms = {x["domain"]: x for x in harness.structs(harness.rpc_ok(server,
                                                       "tls.domains"))}
        assert sorted(doms) == ["client:default", "server:any(a.example)",
                                "server:default"], sorted(doms)
        sa = doms["server:any(a.example)"]
        assert sa["source"] == "%s:%d" % (server.tls_cfg,
                                          line_of(cfg, "[server:any]")), sa
        assert sa["server_name"] == "a.example *.w.example", sa
        assert sa["sni_default"] == "no" and sa["verify"] == "yes", sa
        assert sa["subject"] == "/CN=dom a", sa
        assert "DNS:dom-a" in sa["names"], sa
        assert sa["days_left"] in (29, 30), sa
        assert sa["not_after"].endswith("GMT"), sa
        sd = doms["server:default"]
        assert sd["source"] == "%s:2" % server.tls_cfg, sd
        assert sd["subject"] == "/CN=dom default", sd
        assert doms["client:default"]["source"] == "modparam", doms
        for x in doms.values():
            assert x["config"] == server.tls_cfg and x["generation"] == 1, x
            assert isinstance(x.get("days_left", 0), int), x

        # tls.kill: the client reads EOF, the row goes, the other one stays.
        fault, out = harness.rpc(server, "tls.kill", row["id"])
        assert fault is None and out == "ok", (fault, out)
        a.tls.settimeout(harness.IO_TIMEOUT)
        try:
            data = a.tls.recv(100)
        except (ConnectionResetError, ssl.SSLEOFError) as exc:
            raise AssertionError("killed connection reset, not closed: %r"
                                 % exc) from None
        assert data == b"", "killed connection sent %r" % data
        peer = "%s:%d" % (HOST, a.local_port)
        harness.poll("killed connection gone from tls.list",
                     lambda: all(r["peer"] != peer
                                 for r in harness.tls_list(server)),
                     POLL_TIMEOUT)
        assert d.request(d.build("OPTIONS")).status == 200
        fault, out = harness.rpc(server, "tls.kill", row["id"])
        assert fault == 404, (fault, out)
        fault, out = harness.rpc(server, "tls.kill")
        assert fault == 400, (fault, out)
    finally:
        a.close()
        d.close()
