"""The routing script's view of a TLS connection: @tls... selects, $tls_...
pseudo-variables and is_peer_verified().

Every value is compared with what `openssl x509` prints for the certificate
file the peer (or the server) used, or with what the client's own TLS stack
says about the connection.  The certificates are made here with `openssl ca`,
which lets the test choose every subject field, the serial, both dates and
several subjectAltNames of each kind (non-ASCII and long ones included).

The server's script answers each OPTIONS with one "X-T: <key>=<value>" reply
header per value; the request's X-Group header names the group of values
asked for (a reply holding all of them at once would be needlessly large).
"""

import os
import re
import socket
import ssl
import urllib.parse

import harness

HOST = "127.0.0.1"
SNI = "sip.select.example"

# What pv printing shows for a variable without a value.
NULL = "<null>"

# -------------------------------------------------------------- certificates

CA_SUBJECT = ("/C=DE/ST=Baden-Württemberg/L=Karlsruhe/O=Select Test CA Örg"
              "/OU=Certification/CN=Select Test Root CA")
SERVER_SUBJECT = ("/C=AT/ST=Wien/L=Wien Innere Stadt/O=Server Örg GmbH"
                  "/OU=Voice/OU=Edge Proxies/CN=sip.select.example"
                  "/UID=srv-0001/emailAddress=ops@select.example")
LONG_LOCALITY = "Llanfair" + "pwllgwyngyll" * 9            # 116 characters
CLIENT_SUBJECT = ("/C=CH/ST=Zürich/L=%s/O=Client Ünïcode AG"
                  "/OU=Phones/OU=Desk Sets/OU=Lobby"
                  "/CN=Jörg Müller/UID=jörg.müller-42"
                  "/emailAddress=joerg@client.example" % LONG_LOCALITY)

LONG_DNS = ".".join(["a%02d" % i + "x" * 56 for i in range(4)]) + ".example"
LONG_URI = "sip:" + "u" * 700 + "@client.example;transport=tls"
SERVER_SANS = [("DNS", "sip.select.example"), ("DNS", "localhost"),
               ("DNS", "bücher.select.example"), ("IP", "127.0.0.1"),
               ("IP", "2001:db8:0:0:0:0:0:5060"),
               ("URI", "sip:select.example"),
               ("email", "ops@select.example")]
CLIENT_SANS = [("email", "joerg@client.example"),
               ("email", "jörg@müller.example"),
               ("email", "second.address@client.example"),
               ("DNS", "phone1.client.example"), ("DNS", LONG_DNS),
               ("DNS", "überall.client.example"),
               ("URI", "sip:joerg@client.example"),
               ("URI", "sip:jörg@client.example"), ("URI", LONG_URI),
               ("IP", "192.0.2.17"), ("IP", "2001:db8::abcd:1"),
               ("IP", "10.1.2.3")]

# The extensions of the leaves, beside harness.ca_issue()'s ca_ext.
_CA_CNF = """\
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = @alt
[self_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
[alt]
{alt}
"""


class Pki:
    """A CA, a server and a client with rich certificates, plus a stranger
    (client from another CA) and a self-signed client."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca = self._cert("ca", CA_SUBJECT, None, "ca_ext",
                             "0A11CE", "20240101000000Z", "20991231235959Z")
        self.server = self._cert("server", SERVER_SUBJECT, self.ca,
                                 "leaf_ext", "03E8", "20240229060708Z",
                                 "20510101000000Z", SERVER_SANS)
        # A 20-byte serial whose first bit is set.
        self.client = self._cert("client", CLIENT_SUBJECT, self.ca,
                                 "leaf_ext",
                                 "F17E5E1EC7C0FFEE0123456789ABCDEF00C0FFEE",
                                 "20250315123456Z", "20491231235959Z",
                                 CLIENT_SANS)
        self.other_ca = self._cert("other-ca", "/CN=Unknown Test CA", None,
                                   "ca_ext", "0B", "20240101000000Z",
                                   "20991231235959Z")
        self.stranger = self._cert("stranger", "/O=Stranger/CN=stranger",
                                   self.other_ca, "leaf_ext", "0C",
                                   "20240101000000Z", "20991231235959Z",
                                   [("DNS", "stranger.example")])
        self.self_signed = self._cert("self", "/O=Myself/CN=self signed",
                                      None, "self_ext", "5E1F",
                                      "20240101000000Z", "20991231235959Z")
        # A ca_list trusting the CA and, directly, the self-signed client.
        self.trusted = harness.concatenate(
            os.path.join(directory, "trusted.pem"), self.ca.path,
            self.self_signed.path)

    def _cert(self, name, subject, issuer, ext, serial, start, end,
              sans=()):
        d = os.path.join(self.dir, name)
        alt = "\n".join("%s.%d = %s" % (kind, i, value)
                        for i, (kind, value) in enumerate(sans, 1))
        path, key = harness.ca_issue(
            d, _CA_CNF.format(alt=alt or "DNS.1 = unused"), subject,
            issuer, ext, serial, (start, end), "RSA", utf8=True)
        return CertInfo(path, key)


class CertInfo:
    """A certificate file and what `openssl x509` prints about it, in the
    forms the module documents (see tls_select.c)."""

    def __init__(self, path, key):
        self.path = path
        self.key = key

        def x509(*opts):
            return harness.openssl("x509", "-in", path, *opts)

        self.pem = x509("-outform", "PEM")
        self.urlencoded = urllib.parse.quote(self.pem, safe="")
        self.subject = x509("-noout", "-subject", "-nameopt", "compat") \
            .strip().split("=", 1)[1]
        self.issuer = x509("-noout", "-issuer", "-nameopt", "compat") \
            .strip().split("=", 1)[1]
        self.subject_fields = self._fields(x509(
            "-noout", "-subject", "-nameopt", "sep_multiline,utf8,sname"))
        self.issuer_fields = self._fields(x509(
            "-noout", "-issuer", "-nameopt", "sep_multiline,utf8,sname"))
        self.serial = x509("-noout", "-serial").strip().split("=", 1)[1]
        self.not_before = x509("-noout", "-startdate").strip() \
            .split("=", 1)[1]
        self.not_after = x509("-noout", "-enddate").strip().split("=", 1)[1]
        text = x509("-noout", "-text")
        self.version = re.search(r"Version: (\d+) \(", text).group(1)
        self.san = {"email": [], "DNS": [], "URI": [], "IP Address": []}
        out = x509("-noout", "-ext", "subjectAltName").splitlines()
        for entry in (out[1].strip().split(", ") if len(out) > 1 else []):
            kind, value = entry.split(":", 1)
            self.san[kind].append(value)

    @staticmethod
    def _fields(text):
        """{short name: [values]} from a sep_multiline listing."""
        fields = {}
        for line in text.splitlines()[1:]:
            name, value = line.strip().split("=", 1)
            fields.setdefault(name, []).append(value)
        return fields

    def field(self, issuer, sname, index=0):
        values = (self.issuer_fields if issuer else
                  self.subject_fields).get(sname, [])
        try:
            return values[index]
        except IndexError:
            return None

    def field_count(self, issuer, sname):
        return str(len((self.issuer_fields if issuer else
                        self.subject_fields).get(sname, [])))


def pki(t):
    """The PKI of this run, made once."""
    return t.session.shared("select-certs", Pki)


# ------------------------------------------------------- what is asked for

# Name fields: select spellings, pv suffix, openssl short name.
FIELDS = [
    (("cn", "commonName", "common_name", "name"), "cn", "CN"),
    (("c", "countryName", "country_name", "country"), "country", "C"),
    (("st", "stateOrProvinceName", "state_or_province_name", "state"),
     "state", "ST"),
    (("l", "localityName", "locality_name", "locality"), "locality", "L"),
    (("o", "organizationName", "organization_name", "organization"),
     "organization", "O"),
    (("ou", "organizationalUnitName", "organizational_unit_name", "unit"),
     "unit", "OU"),
    (("uid", "uniqueIdentifier", "unique_identifier"), "uid", "UID"),
]

# subjectAltName kinds: select spellings, pv suffix, openssl prefix.
SANS = [
    (("email", "emailAddress", "email_address"), "email", "email"),
    (("host", "hostname", "dns"), "hostname", "DNS"),
    (("uri", "url", "urn"), "uri", "URI"),
    (("ip", "ipaddr", "ip_address"), "ip", "IP Address"),
]

# Values containing newlines go through {s.encode.hexa}.
HEX = "{s.encode.hexa}"


def pv_items():
    """(key, script expression, expectation) for every pseudo-variable.

    An expectation is a function of (client view, peer cert, my cert) giving
    the expected text, or None for "no value"."""
    items = [
        ("tls_version", "$tls_version", lambda c, p, m: c["version"]),
        ("tls_description", "$tls_description", lambda c, p, m: c["desc"]),
        ("tls_cipher_info", "$tls_cipher_info", lambda c, p, m: c["cipher"]),
        ("tls_cipher_bits", "$tls_cipher_bits", lambda c, p, m: c["bits"]),
        ("tls_peer_server_name", "$tls_peer_server_name",
         lambda c, p, m: c["sni"]),
        ("tls_peer_verified", "$tls_peer_verified",
         lambda c, p, m: c["verified"]),
    ]
    for who in ("peer", "my"):
        def cert(p, m, who=who):
            return p if who == "peer" else m

        def on(attr, who=who, cert=cert):
            return lambda c, p, m: (getattr(cert(p, m), attr)
                                    if cert(p, m) else None)

        items += [
            ("tls_%s_version" % who, "$tls_%s_version" % who, on("version")),
            ("tls_%s_serial" % who, "$tls_%s_serial" % who, on("serial")),
            ("tls_%s_subject" % who, "$tls_%s_subject" % who, on("subject")),
            ("tls_%s_issuer" % who, "$tls_%s_issuer" % who, on("issuer")),
            ("tls_%s_notBefore" % who, "$tls_%s_notBefore" % who,
             on("not_before")),
            ("tls_%s_notAfter" % who, "$tls_%s_notAfter" % who,
             on("not_after")),
            ("tls_%s_raw_cert" % who, "$(tls_%s_raw_cert%s)" % (who, HEX),
             lambda c, p, m, cert=cert: (cert(p, m).pem.encode().hex()
                                         if cert(p, m) else None)),
            ("tls_%s_urlencoded_cert" % who, "$tls_%s_urlencoded_cert" % who,
             on("urlencoded")),
        ]
        for part in ("subject", "issuer"):
            for _, suffix, sname in FIELDS:
                if suffix == "uid" and part == "issuer":
                    continue        # not among the documented variables
                name = "tls_%s_%s_%s" % (who, part, suffix)
                items.append((name, "$" + name,
                              lambda c, p, m, cert=cert, i=part == "issuer",
                              s=sname: (cert(p, m).field(i, s)
                                        if cert(p, m) else None)))
            # A later field of the kind, by index (0-based, as pvars are).
            name = "tls_%s_%s_unit" % (who, part)
            for index in (1, -1, 7):
                items.append(("%s[%d]" % (name, index),
                              "$(%s[%d])" % (name, index),
                              lambda c, p, m, cert=cert, i=part == "issuer",
                              x=index: (cert(p, m).field(i, "OU", x)
                                        if cert(p, m) else None)))
        for _, suffix, prefix in SANS:
            name = "tls_%s_san_%s" % (who, suffix)
            for index in (None, 1, 2, -1, 9):
                key = name if index is None else "%s[%d]" % (name, index)
                expr = "$" + name if index is None else \
                    "$(%s[%d])" % (name, index)
                items.append((key, expr, lambda c, p, m, cert=cert,
                              k=prefix, x=index or 0:
                              _nth(cert(p, m).san[k], x)
                              if cert(p, m) else None))
    items += [
        ("tls_peer_revoked", "$tls_peer_revoked",
         lambda c, p, m: "0" if p else None),
        ("tls_peer_expired", "$tls_peer_expired",
         lambda c, p, m: "0" if p else None),
        ("tls_peer_selfsigned", "$tls_peer_selfsigned",
         lambda c, p, m: c["self_signed"] if p else None),
    ]
    for index in (None, 0, 1, -1, 5):
        key = "tls_peer_verified_cert_chain" + (
            "" if index is None else "[%d]" % index)
        expr = "$(tls_peer_verified_cert_chain%s%s)" % (
            "" if index is None else "[%d]" % index, HEX)
        items.append((key, expr, lambda c, p, m, x=index or 0:
                       _nth([cert.pem.encode().hex()
                             for cert in c["chain"]], x)))
    return items


def _nth(values, index):
    try:
        return values[index]
    except IndexError:
        return None


def sel_items(all_spellings):
    """(key, script expression, expectation) for the selects; with
    all_spellings, every alias of every name, else the first of each."""
    def pick(names):
        return names if all_spellings else names[:1]

    def sel(path, hexa=False):
        return "$(sel(@%s)%s)" % (path, HEX if hexa else "")

    items = []
    for root in pick(("desc", "description")):
        items.append(("tls." + root, sel("tls." + root),
                      lambda c, p, m: c["desc"]))
    items += [
        ("tls", sel("tls"), lambda c, p, m: c["desc"]),
        ("tls.version", sel("tls.version"), lambda c, p, m: c["version"]),
        ("tls.cipher", sel("tls.cipher"), lambda c, p, m: c["cipher"]),
        ("tls.cipher.bits", sel("tls.cipher.bits"),
         lambda c, p, m: c["bits"]),
    ]
    for name in pick(("server_name", "serverName")):
        items.append(("tls." + name, sel("tls." + name),
                      lambda c, p, m: c["sni"]))
    whos = [("peer", "peer")] + [("my", alias) for alias in
                                 pick(("my", "me", "myself"))]
    for who, alias in whos:
        base = "tls." + alias

        def cert(p, m, who=who):
            return p if who == "peer" else m

        def on(attr, cert=cert):
            return lambda c, p, m: (getattr(cert(p, m), attr)
                                    if cert(p, m) else None)

        simple = [
            (("version",), "version", False),
            (("sn", "serialNumber", "serial_number", "serial"), "serial",
             False),
            (("not_before", "notBefore"), "not_before", False),
            (("not_after", "notAfter"), "not_after", False),
            (("urlencoded_cert", "URLEncodedCert"), "urlencoded", False),
        ]
        for names, attr, _ in simple:
            for n in pick(names):
                items.append((base + "." + n, sel(base + "." + n), on(attr)))
        for n in pick(("raw_cert", "rawCert")):
            items.append((base + "." + n, sel(base + "." + n, True),
                          lambda c, p, m, cert=cert:
                          cert(p, m).pem.encode().hex()
                          if cert(p, m) else None))
        for parts, issuer in ((("subject", "subj"), False),
                              (("issuer",), True)):
            for part in pick(parts):
                path = base + "." + part
                items.append((path, sel(path),
                              on("issuer" if issuer else "subject")))
                for names, _, sname in FIELDS:
                    for n in pick(names):
                        items.append((path + "." + n, sel(path + "." + n),
                                      lambda c, p, m, cert=cert, i=issuer,
                                      s=sname: cert(p, m).field(i, s)
                                      if cert(p, m) else None))
                # Indexes count from 1 in selects; -1 is the last.
                for index in (1, 2, 3, -1, 4):
                    key = "%s.ou[%d]" % (path, index)
                    items.append((key, sel(key),
                                  lambda c, p, m, cert=cert, i=issuer,
                                  x=index: cert(p, m).field(
                                      i, "OU", x - 1 if x > 0 else x)
                                  if cert(p, m) else None))
                key = path + ".ou.count"
                items.append((key, sel(key),
                              lambda c, p, m, cert=cert, i=issuer:
                              cert(p, m).field_count(i, "OU")
                              if cert(p, m) else None))
        for names, _, prefix in SANS:
            for n in pick(names):
                path = base + "." + n
                items.append((path, sel(path),
                              lambda c, p, m, cert=cert, k=prefix:
                              _nth(cert(p, m).san[k], 0)
                              if cert(p, m) else None))
                for index in (1, 2, 3, -1, -2, 9):
                    key = "%s[%d]" % (path, index)
                    items.append((key, sel(key),
                                  lambda c, p, m, cert=cert, k=prefix,
                                  x=index: _nth(cert(p, m).san[k],
                                                x - 1 if x > 0 else x)
                                  if cert(p, m) else None))
                items.append((path + ".count", sel(path + ".count"),
                              lambda c, p, m, cert=cert, k=prefix:
                              str(len(cert(p, m).san[k]))
                              if cert(p, m) else None))
    items += [
        ("tls.peer.verified", sel("tls.peer.verified"),
         lambda c, p, m: c["verified"]),
        ("tls.peer.revoked", sel("tls.peer.revoked"),
         lambda c, p, m: "0" if p else None),
        ("tls.peer.expired", sel("tls.peer.expired"),
         lambda c, p, m: "0" if p else None),
    ]
    for n in pick(("self_signed", "selfsigned")):
        items.append(("tls.peer." + n, sel("tls.peer." + n),
                      lambda c, p, m: c["self_signed"] if p else None))
    chain = "tls.peer.verified_cert_chain"
    items.append((chain, sel(chain, True), lambda c, p, m: _nth(
        [x.pem.encode().hex() for x in c["chain"]], 0)))
    for index in (1, 2, -1, 3):
        key = "%s[%d]" % (chain, index)
        items.append((key, sel(key, True), lambda c, p, m, x=index: _nth(
            [y.pem.encode().hex() for y in c["chain"]],
            x - 1 if x > 0 else x)))
    items.append((chain + ".count", sel(chain + ".count"),
                  lambda c, p, m: str(len(c["chain"])) if c["chain"] else
                  ("0" if c["version"] else None)))
    return items


# Selects used directly in script expressions rather than through $sel().
DIRECT = [
    ("direct.peer.host2", "@tls.peer.host[2]",
     lambda c, p, m: _nth(p.san["DNS"], 1) if p else ""),
    ("direct.my.cn", "@tls.my.subject.cn",
     lambda c, p, m: m.field(False, "CN") if m else ""),
    ("direct.cipher.bits", "@tls.cipher.bits",
     lambda c, p, m: c["bits"] or ""),
]


def groups():
    """Request groups: name -> [(key, expression, expectation)]."""
    result = {"pv": pv_items(), "sel": sel_items(False),
              "alias": sel_items(True)}
    for name, items in list(result.items()):
        for i in range(0, len(items), 60):
            result["%s%d" % (name, i // 60)] = items[i:i + 60]
        del result[name]
    return result


# --------------------------------------------------------------- the server

CFG = harness.cfg_head("""\
tcp_rd_buf_size=65536
# Room for the long values (hex-encoded certificates) in one pv print.
pv_buffer_size=65536
""", ["sl", "textops", "pv"], tcp_children=2) + """

@TLS_MODPARAMS@

request_route {
	if (is_method("OPTIONS")) {
		if (is_peer_verified()) {
			append_to_reply("X-T: is_peer_verified=yes\\r\\n");
		} else {
			append_to_reply("X-T: is_peer_verified=no\\r\\n");
		}
@DISPATCH@
		sl_send_reply("200", "OK");
		exit;
	}
	sl_send_reply("404", "Not Found");
}

@ROUTES@
"""


def cfg_subst(extra=()):
    """The @DISPATCH@ and @ROUTES@ of CFG: a route per group of values;
    `extra` lines go into the DIRECT one."""
    dispatch, routes = [], []
    for gname, items in sorted(groups().items()):
        dispatch.append('\t\tif ($hdr(X-Group) == "%s") route(%s);'
                        % (gname, gname.upper()))
        lines = ["route[%s] {" % gname.upper()]
        for key, expr, _ in items:
            lines.append('\tappend_to_reply("X-T: %s=%s\\r\\n");'
                         % (key, expr))
        lines.append("}")
        routes.append("\n".join(lines))
    dispatch.append('\t\tif ($hdr(X-Group) == "direct") route(DIRECT);')
    lines = ["route[DIRECT] {"]
    for key, expr, _ in DIRECT:
        lines.append("\t$var(v) = %s;" % expr)
        lines.append('\tappend_to_reply("X-T: %s=$var(v)\\r\\n");' % key)
    lines += ["\t" + line for line in extra]
    lines.append("}")
    routes.append("\n".join(lines))
    return [("DISPATCH", "\n".join(dispatch)),
            ("ROUTES", "\n\n".join(routes))]


def start(t, extra=(), fails=False, **params):
    """A Kamailio running the select script with our server certificate;
    `extra` lines go into the script.  With `fails`, one that must refuse
    to start (bad level lines expected)."""
    p = pki(t)
    modparams = {"certificate": p.server.path, "private_key": p.server.key,
                 "tls_method": "TLSv1.2+", "ca_list": p.trusted}
    modparams.update(params)
    if fails:
        server = t.launch(modparams, allow_errors=[r"\b(ERROR|CRITICAL):"],
                          cfg=CFG, subst=cfg_subst(extra))
        status = server.wait_exit()
        assert status != 0, "kamailio started with %s" % (extra,)
        return server
    return t.kamailio(modparams, cfg=CFG, subst=cfg_subst(extra))


# --------------------------------------------------------------- the client

class Client(harness.SipConnection):
    """A TLS client sending OPTIONS with SNI, reading the replies."""

    def __init__(self, t, server, version, cert=None):
        ctx = harness.client_context(pki(t).ca.path, version,
                                     cert and (cert.path, cert.key))
        super().__init__(server.tls_port, ctx, SNI)

    def view(self):
        """What the client knows of the connection."""
        name, version, bits = self.tls.cipher()
        return {"version": version, "cipher": name, "bits": str(bits),
                "desc": cipher_description(name), "sni": SNI}

    def ask(self, group):
        reply = self.request(self.build("OPTIONS",
                                        headers=[("X-Group", group)]))
        assert reply.start_line.startswith("SIP/2.0 200"), reply.start_line
        return values_of(reply.headers)


def values_of(headers):
    values = {}
    for name, value in headers:
        if name == "X-T":
            key, _, val = value.partition("=")
            values[key] = val
    return values


def cipher_description(name):
    """The line `openssl ciphers -v` prints for the cipher."""
    for line in harness.openssl("ciphers", "-v",
                                "ALL:@SECLEVEL=0").splitlines():
        if line.split(" ", 1)[0] == name:
            return line.rstrip()
    raise AssertionError("openssl ciphers does not list %s" % name)


def check(values, items, view, peer, my, where):
    """Compares every value with its expectation; one message for all."""
    wrong = []
    for key, _, expect in items:
        want = expect(view, peer, my)
        got = values.get(key)
        if want is None:
            ok = got in (NULL, "")
            want = "<no value>"
        else:
            ok = got == want
        if not ok:
            wrong.append("%s: got %r, want %r" % (key, short(got),
                                                   short(want)))
    assert not wrong, "%s: %d wrong value(s):\n  %s" % (
        where, len(wrong), "\n  ".join(wrong))


def short(value):
    if isinstance(value, str) and len(value) > 120:
        return value[:60] + "...(%d chars)..." % len(value) + value[-30:]
    return value


def check_all(client, view, peer, my, where):
    for gname, items in sorted(groups().items()):
        check(client.ask(gname), items, view, peer, my,
              "%s, group %s" % (where, gname))
    check(client.ask("direct"), DIRECT, view, peer, my, where + ", direct")


# -------------------------------------------------------------------- tests

def _verified_client(t, version):
    p = pki(t)
    server = start(t, verify_certificate=1, require_certificate=1)
    client = Client(t, server, version, p.client)
    try:
        view = client.view()
        assert view["version"] == version, view
        view.update(verified="1", self_signed="0", chain=[p.client, p.ca])
        values = client.ask("pv0")
        assert values.get("is_peer_verified") == "yes", values.get(
            "is_peer_verified")
        check_all(client, view, p.client, p.server, version)
    finally:
        client.close()


def test_select_client_cert_tls12(t):
    _verified_client(t, "TLSv1.2")


def test_select_client_cert_tls13(t):
    _verified_client(t, "TLSv1.3")


def test_select_self_signed_client_trusted(t):
    """A self-signed client certificate the server trusts as such."""
    p = pki(t)
    server = start(t, verify_certificate=1, require_certificate=1)
    for version in ("TLSv1.2", "TLSv1.3"):
        client = Client(t, server, version, p.self_signed)
        try:
            view = client.view()
            view.update(verified="1", self_signed="1", chain=[p.self_signed])
            values = client.ask("pv0")
            assert values["is_peer_verified"] == "yes"
            check_all(client, view, p.self_signed, p.server, version)
        finally:
            client.close()


def test_select_client_without_certificate(t):
    """Peer values empty, is_peer_verified() false; ours still there.
    Once with the server not asking for a certificate, once asking for one
    without requiring it."""
    p = pki(t)
    for params in ({}, {"verify_certificate": 1}):
        server = start(t, **params)
        for version in ("TLSv1.2", "TLSv1.3"):
            client = Client(t, server, version)
            try:
                view = client.view()
                view.update(verified="0", self_signed=None, chain=[])
                values = client.ask("pv0")
                assert values["is_peer_verified"] == "no", (params, version)
                check_all(client, view, None, p.server,
                          "%s %s" % (version, params))
            finally:
                client.close()


def test_select_unverified_client_certificate(t):
    """verify_certificate on, require_certificate off, a certificate from an
    unknown CA.

    The module core (tls_domain.c) sets SSL_VERIFY_PEER without a verify
    callback, so OpenSSL refuses the handshake of any certificate that fails
    verification whether or not require_certificate is set: the values of
    an unverified certificate cannot reach the script.  The test accepts
    both outcomes but checks each fully: a refused client must be refused
    cleanly (the server then still serves verified clients); an accepted
    one must show its certificate with verified 0 and is_peer_verified()
    false."""
    p = pki(t)
    server = start(t, verify_certificate=1, require_certificate=0)
    for version in ("TLSv1.2", "TLSv1.3"):
        try:
            client = Client(t, server, version, p.stranger)
            try:
                values = client.ask("pv0")
            finally:
                client.close()
        except (ssl.SSLError, harness.ConnectionClosed, ConnectionResetError,
                BrokenPipeError):
            continue                            # refused by the handshake
        assert values["is_peer_verified"] == "no", values
        assert values["tls_peer_verified"] == "0", values
        assert values["tls_peer_subject"] == p.stranger.subject, values
    client = Client(t, server, "TLSv1.3", p.client)
    try:
        assert client.ask("pv0")["is_peer_verified"] == "yes"
    finally:
        client.close()


def test_select_over_udp(t):
    """No TLS connection: every value empty, nothing logged at a bad level
    (checked by the harness after the test)."""
    server = start(t, verify_certificate=1)
    view = {"version": None, "cipher": None, "bits": None, "desc": None,
            "sni": None, "verified": None, "self_signed": None, "chain": []}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(harness.IO_TIMEOUT)
        for gname, items in sorted(groups().items()) + [("direct", DIRECT)]:
            data = harness.sip_request(
                "OPTIONS", server.udp_port, sock.getsockname()[1],
                transport="UDP", headers=[("X-Group", gname)])
            sock.sendto(data, (HOST, server.udp_port))
            reply, _ = sock.recvfrom(65535)
            head = reply.split(b"\r\n\r\n", 1)[0]
            start_line, headers = harness.parse_head(head)
            assert start_line.startswith("SIP/2.0 200"), start_line
            values = values_of(headers)
            assert values["is_peer_verified"] == "no"
            for key, _, _ in items:
                # The verified flag is 0 on a TLS connection without a
                # certificate, but over UDP there is no connection at all.
                assert values.get(key) in (NULL, ""), \
                    "%s over UDP: %r" % (key, short(values.get(key)))


def test_select_bad_names_refused_at_startup(t):
    """Mistakes in a select stop Kamailio at startup, not at run time.

    Through $sel(), whose parse error is fatal.  (Kamailio 5.6.3 only logs
    an unresolvable select used directly as an rvalue and goes on; that is
    the core's choice.  Such a line must still not crash it: the module
    keeps its select parameters printable, see tls_select.c.)"""
    for path, why in (("tls.peer.host[0]", r"indexes count from 1"),
                      ("tls.my.verified", r"resolve"),
                      ("tls.peer", r"which value of the certificate"),
                      ("tls.peer.subject.nickname", r"resolve")):
        line = 'append_to_reply("X-T: bad=$sel(@%s)\\r\\n");' % path
        server = start(t, extra=[line], fails=True)
        assert server.logged("ERROR|CRITICAL", why), \
            "@%s refused without a line matching %r" % (path, why)
    server = start(t, extra=["$var(v) = @tls.peer.subject.nickname;"])
    assert server.logged("ERROR", r"Unable to resolve select")
    server.expect_errors(r"Unable to resolve select", r"log_select\(\)")
