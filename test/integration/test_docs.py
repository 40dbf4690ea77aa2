"""The documentation against the code: README.md, doc/*.md, examples/.

- every module parameter (tls_mod.c, tls_param_exports) has its entry in the
  README's Parameters section and in doc/parameters.md, and every parameter
  the documentation names (a "### name" entry, a modparam("tls", ...) line)
  exists;
- the same for the RPC commands (tls_rpc.c, tls_rpc_exports), whose sample
  outputs in the README must show the fields a running module prints;
- the same for the selects and $tls_* variables (tls_select.c tables against
  doc/selects.md; every @tls... and $tls_... anywhere in the documentation
  must resolve) and for the config-file keys and their aliases (tls_config.c);
- every option of scripts/tls-certs.sh is in the README's certificate
  section;
- every Kamailio configuration in examples/ passes `kamailio -c` with the
  module under test, copied to a fresh folder with its certificates made by
  scripts/tls-certs.sh, and each one is also run and driven by real TLS
  clients and servers: it does what its comments say;
- no part of the documentation calls itself unfinished.
"""

import os
import re
import shutil
import socket
import ssl
import subprocess

import harness
import peers

REPO = os.path.dirname(os.path.dirname(harness.HERE))
README = os.path.join(REPO, "README.md")
DOC = os.path.join(REPO, "doc")
EXAMPLES = os.path.join(REPO, "examples")
CERTS_HELPER = os.path.join(REPO, "scripts", "tls-certs.sh")


# ------------------------------------------------------------------ reading

def read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def doc_files():
    """README.md and every doc/*.md: {relative path: text}."""
    files = {"README.md": read("README.md")}
    for name in sorted(os.listdir(DOC)):
        if name.endswith(".md"):
            files["doc/" + name] = read("doc", name)
    return files


def example_files():
    return {"examples/" + name: read("examples", name)
            for name in sorted(os.listdir(EXAMPLES))
            if name.endswith(".cfg")}


def section(text, title):
    """The body of the "## title" section of a markdown text (up to the next
    "## " heading); fails if there is none."""
    m = re.search(r"^## +%s\s*$" % re.escape(title), text, re.M)
    assert m, "no '## %s' section" % title
    end = re.search(r"^## ", text[m.end():], re.M)
    return text[m.end():m.end() + end.start() if end else len(text)]


def entries(text):
    """Names of the "### name" (or "### `name`") entries of a section."""
    return re.findall(r"^### +`?([\w.]+)`?", text, re.M)


def c_block(source, start):
    """The text of the C initializer that begins at `start` (up to "};")."""
    i = source.index(start)
    return source[i:source.index("};", i)]


def strip_code(text):
    """Markdown without fenced blocks and inline code: the prose."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def mismatch(what, code, documented):
    """One message for the names only in the code and only in the docs."""
    only_code = sorted(set(code) - set(documented))
    only_doc = sorted(set(documented) - set(code))
    if not only_code and not only_doc:
        return None
    return "%s: not documented %r; documented but not in the code %r" % (
        what, only_code, only_doc)


def check(*problems):
    problems = [p for p in problems if p]
    assert not problems, "\n  ".join([""] + problems)


# ------------------------------------------------------------- the code side

def module_parameters():
    block = c_block(read("tls_mod.c"), "tls_param_exports[]")
    return re.findall(r'\{\s*"(\w+)",\s*PARAM_', block)


def rpc_commands():
    block = c_block(read("tls_rpc.c"), "tls_rpc_exports[]")
    return re.findall(r'\{\s*"(tls\.\w+)"', block)


def config_keys():
    """(canonical keys, aliases) of the config-file parser."""
    source = read("tls_config.c")
    keys = re.findall(r'\[TLS_CFG_\w+\]\s*=\s*\{\s*"(\w+)"',
                      c_block(source, "cfg_keys[TLS_CFG_KEYS]"))
    aliases = re.findall(r'\{\s*"(\w+)",\s*TLS_CFG_',
                         c_block(source, "cfg_aliases[]"))
    return keys, aliases


def select_tree():
    """{(parent node, lower-case name): child node} of the select table,
    with the CERT_ROWS macro expanded for each node it is used with."""
    source = read("tls_select.c")
    row = r'ROW\(\s*(\w+),\s*"(\w+)",\s*(\w+)'
    macro = source[source.index("#define CERT_ROWS(node)"):]
    macro = macro[:macro.index("\n\n")]
    table = c_block(source, "tls_sel_table[]")
    tree = {}
    for parent, name, child in re.findall(row, table):
        tree[(parent, name.lower())] = child
    for node in re.findall(r"CERT_ROWS\((\w+)\)", table):
        for _, name, child in re.findall(row, macro):
            tree[(node, name.lower())] = child
    return tree


def select_names():
    return {name for (_, name) in select_tree()}


def pv_names():
    source = read("tls_select.c")
    block = c_block(source, "tls_select_pvs[]")
    names = re.findall(r'\bPV(?:_CONN|_CERT|_NAME|_FIELD|_SAN|X)\(\s*"(\w+)"',
                       block)
    fields = source[source.index("#define PV_FIELDS("):]
    fields = fields[:fields.index("\n\n")]
    suffixes = re.findall(r'prefix "(_\w+)"', fields)
    for prefix in re.findall(r'PV_FIELDS\(\s*"(\w+)"', block):
        names += [prefix + s for s in suffixes]
    return names


# ---------------------------------------------------------- the docs side

def expand_braces(name):
    """tls_{peer,my}_x -> [tls_peer_x, tls_my_x]."""
    m = re.search(r"\{([^{}]*)\}", name)
    if not m:
        return [name]
    out = []
    for alt in m.group(1).split(","):
        out += expand_braces(name[:m.start()] + alt.strip() + name[m.end():])
    return out


def documented_pvs(text):
    names = []
    for raw in re.findall(r"\$\(?(tls_(?:\w|\{[\w,\s]*\})+)", text):
        names += expand_braces(raw)
    return names


def documented_selects(text):
    """Every @tls... expression written in the text."""
    return re.findall(r"@tls(?:\.[\w]+|\[-?\d+\])*", text)


def select_problem(expr, tree):
    """None if the select resolves in the table, else why not. Upper-case
    one-letter parts (X, F) are placeholders and end the check."""
    parts = re.findall(r"\.(\w+)|\[(-?\d+)\]", expr[len("@tls"):])
    node = tree.get(("NULL", "tls"))
    for name, index in parts:
        if index:
            if node != "tls_sel_list":
                return "%s: index after a part that is not a list" % expr
            continue
        if len(name) == 1 and name.isupper():
            return None
        child = tree.get((node, name.lower()))
        if child is None:
            return "%s: no '%s' there" % (expr, name)
        node = child
    if node in ("tls_sel_peer", "tls_sel_my"):
        return "%s: names a certificate, not a value" % expr
    return None


# -------------------------------------------------------------- name checks

def test_doc_parameters_match_exports(t):
    """README's Parameters section and doc/parameters.md list exactly the
    exported parameters; every modparam("tls", ...) in the docs and the
    examples names one."""
    code = module_parameters()
    assert len(code) > 20, "parsed only %r from tls_mod.c" % code
    readme = section(read("README.md"), "Parameters")
    in_depth = read("doc", "parameters.md")
    used = []
    for path, text in list(doc_files().items()) + list(example_files().items()):
        for name in re.findall(r'modparam\(\s*"tls"\s*,\s*"(\w+)"', text):
            used.append((path, name))
    check(mismatch("README Parameters entries", code, entries(readme)),
          mismatch("doc/parameters.md entries", code, entries(in_depth)),
          *["%s: modparam of unknown parameter '%s'" % (path, name)
            for path, name in used if name not in code])
    # Each entry says its type, its default and shows an example.
    for text, where in ((readme, "README"), (in_depth, "doc/parameters.md")):
        for name, body in re.findall(r"^### +`?(\w+)`?.*?\n(.*?)(?=^### |\Z)",
                                     text, re.M | re.S):
            for needle in ("Default", 'modparam("tls", "%s"' % name):
                assert needle in body, "%s: entry %s has no %r" % (
                    where, name, needle)


def test_doc_rpc_commands_match_exports(t):
    """The README's RPC section and doc/rpc.md document exactly the exported
    commands; every tls.* command run with kamcmd in the docs exists."""
    code = rpc_commands()
    assert len(code) >= 4, "parsed only %r from tls_rpc.c" % code
    readme = section(read("README.md"), "RPC commands")
    used = []
    for path, text in doc_files().items():
        for name in re.findall(r"kamcmd[^\n`]*?\b(tls\.\w+)", text):
            used.append((path, name))
    check(mismatch("README RPC entries", code, entries(readme)),
          mismatch("doc/rpc.md entries", code, entries(read("doc", "rpc.md"))),
          *["%s: kamcmd %s does not exist" % (path, name)
            for path, name in used if name not in code])


def test_doc_selects_and_variables_match_tables(t):
    """doc/selects.md names every select part and every $tls_ variable of
    tls_select.c; every @tls... and $tls_... written anywhere in the docs
    and the examples exists; the README links to doc/selects.md."""
    tree = select_tree()
    pvs = pv_names()
    assert len(tree) > 50 and len(pvs) > 40, "parsed %d selects, %d pvs" % (
        len(tree), len(pvs))
    selects_md = read("doc", "selects.md")
    sel_section = section(selects_md, "Selects")
    sel_words = {w.lower() for w in re.findall(r"`[^`]*`", sel_section)
                 for w in re.findall(r"\w+", w)}
    problems = [mismatch("$tls_ variables of doc/selects.md", pvs,
                         documented_pvs(section(selects_md,
                                                "Pseudo-variables")))]
    problems += ["doc/selects.md: select part '%s' not documented" % name
                 for name in sorted(select_names()) if name not in sel_words]
    everything = dict(doc_files())
    everything.update(example_files())
    for path, text in everything.items():
        problems += ["%s: unknown variable $%s" % (path, name)
                     for name in sorted(set(documented_pvs(text)))
                     if name not in pvs]
        problems += ["%s: %s" % (path, why)
                     for why in (select_problem(e, tree)
                                 for e in sorted(set(documented_selects(text))))
                     if why]
    assert "doc/selects.md" in read("README.md"), \
        "README does not link doc/selects.md"
    check(*problems)


def test_doc_config_keys_match_parser(t):
    """The README's config-file section and doc/config-file.md name every
    key and alias the parser knows, and no other key."""
    keys, aliases = config_keys()
    assert len(keys) > 10 and aliases, "parsed %r, %r" % (keys, aliases)
    readme = section(read("README.md"), "The TLS config file")
    depth = read("doc", "config-file.md")
    problems = []
    for where, text in (("README", readme), ("doc/config-file.md", depth)):
        words = set(re.findall(r"`(\w+)`", text))
        problems += ["%s: config key '%s' not documented" % (where, k)
                     for k in keys + aliases if k not in words]
    # The key table of doc/config-file.md: "| `key` | `alias` ..." rows.
    table = re.findall(r"^\| `(\w+)`", section(depth, "Keys"), re.M)
    problems.append(mismatch("doc/config-file.md key table", keys, table))
    check(*problems)


def test_doc_certificate_helper_options(t):
    """Every option of scripts/tls-certs.sh is explained in the README's
    certificate section, and the helper runs as documented."""
    with open(CERTS_HELPER) as f:
        usage = [line for line in f.read().split("set -euo")[0].splitlines()]
    options = set(re.findall(r"^#\s+(--?[\w-]+)", "\n".join(usage), re.M))
    assert {"-d", "-n", "-c", "--rsa"} <= options, options
    text = section(read("README.md"), "Certificates")
    check(*["README Certificates: option %s not explained" % o
            for o in sorted(options) if "`%s" % o not in text])
    out = subprocess.run(["bash", CERTS_HELPER, "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "-d DIR" in out.stdout, out


def test_doc_no_unfinished_sections(t):
    """No part of the documentation calls itself unfinished."""
    words = re.compile(
        r"\b(incomplete|todo|tbd|not yet|to be written|coming soon)\b"
        r"|\b(sections?|documentation|docs?|details?|information|parts?)\b"
        r"[^.]{0,40}\bmissing\b"
        r"|\bmissing\b[^.]{0,20}\b(sections?|documentation|docs?|details?)\b",
        re.I)
    problems = []
    for path, text in doc_files().items():
        for n, line in enumerate(strip_code(text).splitlines(), 1):
            if words.search(line):
                problems.append("%s: %s" % (path, line.strip()))
    check(*problems)


def test_doc_examples_are_documented(t):
    """Each example configuration is named in the README or doc/."""
    docs = "\n".join(doc_files().values())
    check(*["%s is not mentioned in the documentation" % path
            for path in example_files() if path not in docs])


# ----------------------------------------------------------------- examples

# The certificates each example names, made with scripts/tls-certs.sh as
# the example's header says: (arguments, files to copy as {from: to}).
# An example not listed gets the first recipe.
RECIPES = {
    "demo.cfg": [["-n", "localhost", "-i", "127.0.0.1"]],
    "edge-mtls.cfg": [["-n", "edge.example.com", "-i", "127.0.0.1",
                       "-c", "alice", "-c", "bob"]],
    "sni-domains.cfg": [["-s", "default", "-n", "sip.hosting.example"],
                        ["-s", "alpha", "-n", "alpha.example",
                         "-n", "sip.alpha.example"],
                        ["-s", "beta", "-n", "beta.example",
                         "-n", "*.beta.example", "-c", "alice"],
                        ["-s", "gamma", "-n", "gamma.example"]],
    "carrier-trunk.cfg": [["-n", "trunk.example.com", "-c", "trunk"]],
}


def make_certs(directory, recipe):
    for args in recipe:
        out = subprocess.run(["bash", CERTS_HELPER, "-d", directory] + args,
                             capture_output=True, text=True)
        assert out.returncode == 0, "tls-certs.sh %s: %s" % (args, out.stderr)


def kamailio_configs():
    return [name for name in sorted(os.listdir(EXAMPLES))
            if name.endswith(".cfg")
            and read("examples", name).startswith("#!KAMAILIO")]


def prepare(t, name, subst=()):
    """A copy of examples/<name> (and its .tls.cfg files) in a fresh folder
    with certs/ made; returns (folder, config text with @MODULE@/@RUNDIR@
    and `subst` replaced)."""
    directory = os.path.join(t.dir, name[:-4])
    n = 1
    while os.path.exists(directory):
        n += 1
        directory = os.path.join(t.dir, "%s-%d" % (name[:-4], n))
    os.makedirs(directory)
    for other in os.listdir(EXAMPLES):
        if other.endswith(".tls.cfg"):
            shutil.copy(os.path.join(EXAMPLES, other), directory)
    make_certs(os.path.join(directory, "certs"),
               RECIPES.get(name, RECIPES["demo.cfg"]))
    text = read("examples", name)
    text = text.replace("@MODULE@", t.session.module)
    text = text.replace("@RUNDIR@", directory)
    for old, new in subst:
        assert old in text, "%s no longer has %r" % (name, old)
        text = text.replace(old, new)
    return directory, text


def test_doc_examples_pass_config_check(t):
    """`kamailio -c -f <example>` with this module accepts every example."""
    names = kamailio_configs()
    assert "demo.cfg" in names and len(names) >= 4, names
    problems = []
    for name in names:
        directory, text = prepare(t, name)
        cfg = os.path.join(directory, name)
        with open(cfg, "w") as f:
            f.write(text)
        out = subprocess.run([harness.KAMAILIO, "-c", "-f", cfg],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0 or "config file ok" not in out.stdout + \
                out.stderr:
            problems.append("%s: kamailio -c failed:\n%s" % (
                name, (out.stdout + out.stderr)[-2000:]))
    check(*problems)


def test_doc_config_blocks_pass_config_check(t):
    """Every complete configuration quoted in the docs (a code block that
    starts with #!KAMAILIO) passes `kamailio -c` with this module in place
    of the one it loads."""
    blocks = []
    for path, text in doc_files().items():
        for block in re.findall(r"^( *)```[^\n]*\n(.*?)^\1```", text,
                                re.M | re.S):
            indent, body = block
            body = re.sub(r"^" + indent, "", body, flags=re.M)
            if body.startswith("#!KAMAILIO"):
                blocks.append((path, body))
    assert blocks, "no complete configuration found in the docs"
    problems = []
    for n, (path, body) in enumerate(blocks):
        body = re.sub(r'loadmodule "(tls|tls_modern)\.so"',
                      'loadmodule "%s"' % t.session.module, body)
        if "mpath=" not in body:
            body = body.replace(
                "\n", '\nmpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"\n',
                1)
        cfg = t.path("block%d.cfg" % n)
        with open(cfg, "w") as f:
            f.write(body)
        out = subprocess.run([harness.KAMAILIO, "-c", "-f", cfg],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            problems.append("%s: a quoted configuration fails kamailio -c:\n%s"
                            % (path, (out.stdout + out.stderr)[-1500:]))
    check(*problems)


class Example(harness.Kamailio):
    """A Kamailio running an example configuration prepared by prepare()
    (listen ports replaced by free ones)."""

    def __init__(self, t, name, prepared=None, allow_errors=()):
        self.name = name
        self.dir, self.text = prepared or prepare(t, name)
        self.cert_dir = os.path.join(self.dir, "certs")
        super().__init__(self.dir, t.dir, t.session.module, {}, allow_errors)
        self.ctl_sock = os.path.join(self.dir, "kamailio_ctl")
        t.servers.append(self)
        self.launch()
        if not self.wait_ready():
            raise AssertionError("%s: kamailio exited during startup" % name)

    def _write_cfg(self, module, modparams):
        text = re.sub(r"^listen=tls:127\.0\.0\.1:\d+",
                      "listen=tls:127.0.0.1:%d" % self.tls_port, self.text,
                      flags=re.M)
        text = re.sub(r"^listen=udp:127\.0\.0\.1:\d+",
                      "listen=udp:127.0.0.1:%d" % self.udp_port, text,
                      flags=re.M)
        self.cfg_path = os.path.join(self.dir, self.name)
        with open(self.cfg_path, "w") as f:
            f.write(text)

    def cert(self, name):
        return os.path.join(self.cert_dir, name)


class Conn(harness.SipConnection):
    """harness.SipConnection that tells the CN it was served."""

    def served_cn(self):
        subject = dict(x[0] for x in self.tls.getpeercert()["subject"])
        return subject["commonName"]


def client_ctx(ca, cert=None, key=None):
    return harness.client_context(ca, client_cert=cert and (cert, key))


def request(method, ruri, from_uri, via_port, transport="TLS", headers=(),
            body=b""):
    tag = os.urandom(4).hex()
    lines = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/%s 127.0.0.1:%d;branch=z9hG4bK%s;rport"
             % (transport, via_port, os.urandom(8).hex()),
             "Max-Forwards: 70",
             "From: <%s>;tag=%s" % (from_uri, tag),
             "To: <%s>" % ruri,
             "Call-ID: %s@docs.test" % os.urandom(8).hex(),
             "CSeq: 1 %s" % method]
    lines += ["%s: %s" % h for h in headers]
    if body:
        lines.append("Content-Type: text/plain")
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def refused(port, ctx, sni=None):
    """The exception with which the server refused this client, or None."""
    try:
        with Conn(port, ctx, sni) as conn:
            conn.request(request("OPTIONS", "sip:%s" % (sni or "127.0.0.1"),
                                 "sip:x@example.com", conn.local_port))
    except (ssl.SSLError, harness.ConnectionClosed, ConnectionResetError,
            BrokenPipeError) as exc:
        return exc
    return None


def fields(output):
    """Field names of kamcmd's structure printing ("\\tname: value")."""
    return set(re.findall(r"^\t(\w+):", output, re.M))


def test_doc_example_demo_and_rpc_samples(t):
    """examples/demo.cfg serves OPTIONS over TLS; the README's sample output
    of each RPC command shows the fields the module prints."""
    server = Example(t, "demo.cfg")
    ctx = client_ctx(server.cert("ca.pem"))
    readme = section(read("README.md"), "RPC commands")
    samples = dict(re.findall(r"^### +`?(tls\.\w+)`?.*?\n(.*?)(?=^### |\Z)",
                              readme, re.M | re.S))
    with Conn(server.tls_port, ctx, "localhost") as conn:
        reply = conn.request(request("OPTIONS", "sip:localhost",
                                     "sip:a@localhost", conn.local_port))
        assert reply.status == 200, reply
        problems = []
        for command in ("tls.list", "tls.info", "tls.options", "tls.domains"):
            real = fields(harness.rpc_ok(server, command))
            shown = fields(samples.get(command, ""))
            problems.append(mismatch("README sample of %s (fields)" % command,
                                     real, shown))
        check(*problems)
        rows = harness.rpc_ok(server, "tls.list")
        assert "sni: localhost" in rows, rows
    assert harness.rpc_ok(server, "tls.reload").startswith(
        "ok: generation 2"), "tls.reload did not answer as documented"


def test_doc_example_edge_mtls(t):
    """examples/edge-mtls.cfg: clients without a certificate from the CA are
    refused in the handshake; alice may send as alice (relayed to the core
    with her certificate's name), not as bob."""
    core = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    core.bind(("127.0.0.1", 0))
    core.settimeout(harness.IO_TIMEOUT)
    core_port = core.getsockname()[1]
    try:
        server = Example(t, "edge-mtls.cfg", prepare(t, "edge-mtls.cfg", [(
            '"sip:127.0.0.1:5080"', '"sip:127.0.0.1:%d"' % core_port)]))
        ca = server.cert("ca.pem")
        alice = client_ctx(ca, server.cert("alice-cert.pem"),
                           server.cert("alice-key.pem"))
        assert refused(server.tls_port, client_ctx(ca)) is not None, \
            "a client without certificate was served"
        with Conn(server.tls_port, alice) as conn:
            reply = conn.request(request("OPTIONS", "sip:edge.example.com",
                                         "sip:alice@edge.example.com",
                                         conn.local_port))
            assert reply.status == 200, reply
            # As bob: refused by the script.
            reply = conn.request(request("MESSAGE", "sip:carol@example.com",
                                         "sip:bob@edge.example.com",
                                         conn.local_port, body=b"hi"))
            assert reply.status == 403, reply
            # As alice: relayed to the core, whose 200 comes back.
            conn.send(request("MESSAGE", "sip:carol@example.com",
                              "sip:alice@edge.example.com", conn.local_port,
                              body=b"hello core"))
            data, edge = core.recvfrom(65535)
            got, _ = peers.parse_message(data)
            assert got is not None and got.method == "MESSAGE", data[:300]
            assert got.body == b"hello core", got.body
            assert (got.header("X-Client-Cert") or "").startswith(
                "alice;serial="), got.headers
            core.sendto(peers.reply_to(got), edge)
            reply = conn.read_message()
            while reply.status is not None and reply.status < 200:
                reply = conn.read_message()
            assert reply.status == 200, reply
    finally:
        core.close()


def test_doc_example_sni_domains(t):
    """examples/sni-domains.cfg + .tls.cfg: the SNI picks each customer's
    certificate and policy; no SNI gets gamma; an unknown name the default;
    a request for another domain than the connection's is refused."""
    server = Example(t, "sni-domains.cfg")
    ca = server.cert("ca.pem")
    plain = client_ctx(ca)
    alice = client_ctx(ca, server.cert("alice-cert.pem"),
                       server.cert("alice-key.pem"))
    cases = [("alpha.example", plain, "alpha.example"),
             ("sip.alpha.example", plain, "alpha.example"),
             ("x.beta.example", alice, "beta.example"),
             ("beta.example", alice, "beta.example"),
             ("unknown.example", plain, "sip.hosting.example"),
             (None, plain, "gamma.example")]
    for sni, ctx, cn in cases:
        with Conn(server.tls_port, ctx, sni) as conn:
            reply = conn.request(request(
                "OPTIONS", "sip:%s" % (sni or "gamma.example"),
                "sip:u@example.com", conn.local_port))
            assert reply.status == 200, (sni, reply)
            assert conn.served_cn() == cn, (sni, conn.served_cn())
            assert reply.header("X-Served-By") == cn, (sni, reply.headers)
    assert refused(server.tls_port, plain, "beta.example") is not None, \
        "beta.example served a client without certificate"
    with Conn(server.tls_port, plain, "alpha.example") as conn:
        reply = conn.request(request("OPTIONS", "sip:gamma.example",
                                     "sip:u@example.com", conn.local_port))
        assert reply.status == 403, reply


def test_doc_example_carrier_trunk(t):
    """examples/carrier-trunk.cfg: a call from the PBX reaches the carrier
    over TLS with SNI sip.carrier.example and our client certificate, the
    carrier's certificate being checked; event_route[tls:connection-out]
    sees the new connection, and refuses it when the carrier is not where
    CARRIER_IP says."""
    carrier_pki = os.path.join(t.dir, "carrier-pki")
    make_certs(carrier_pki, [["-n", "sip.carrier.example"]])
    for carrier_ip in ("127.0.0.1", "127.0.0.2"):
        directory, _ = prepare(t, "carrier-trunk.cfg")
        shutil.copy(os.path.join(carrier_pki, "ca.pem"),
                    os.path.join(directory, "certs", "carrier-ca.pem"))
        # The carrier wants our trunk client certificate.
        with peers.TlsPeer(os.path.join(carrier_pki, "server-cert.pem"),
                           os.path.join(carrier_pki, "server-key.pem"),
                           client_ca=os.path.join(directory, "certs",
                                                  "ca.pem")) as peer:
            text = read("examples", "carrier-trunk.cfg")
            for old, new in (
                    ("@MODULE@", t.session.module),
                    ('"sip:203.0.113.7:5061;transport=tls"',
                     '"sip:127.0.0.1:%d;transport=tls"' % peer.port),
                    ('CARRIER_IP "203.0.113.7"',
                     'CARRIER_IP "%s"' % carrier_ip)):
                assert old in text, "carrier-trunk.cfg no longer has %r" % old
                text = text.replace(old, new)
            # A refused connection is a failed send for the core and tm.
            allow = [] if carrier_ip == "127.0.0.1" else [
                r"msg_send_buffer\(\): tcp_send failed",
                r"sl_reply_error\(\): stateless error reply used"]
            server = Example(t, "carrier-trunk.cfg", (directory, text),
                             allow)
            with harness.UdpClient(server.udp_port) as pbx:
                pbx.sock.settimeout(harness.IO_TIMEOUT)
                pbx.send(request("MESSAGE", "sip:+4930123@carrier.example",
                                 "sip:pbx@pbx.example",
                                 pbx.sock.getsockname()[1], transport="UDP",
                                 body=b"to the carrier"))
                status = 100
                while status < 200:
                    data, _ = pbx.sock.recvfrom(65535)
                    status = peers.parse_message(data)[0].status or 100
            if carrier_ip == "127.0.0.1":
                assert status == 200, "PBX got %s" % status
                assert len(peer.connections) == 1, peer.connections
                conn = peer.connections[0]
                assert conn.sni == "sip.carrier.example", conn
                subject = dict(x[0] for x in conn.client_cert["subject"])
                assert subject["commonName"] == "trunk", conn.client_cert
                assert conn.messages[0].body == b"to the carrier", conn
                assert server.logged(
                    "INFO", r"new TLS connection to 127\.0\.0\.1:%d for "
                    r"'sip\.carrier\.example'" % peer.port), \
                    "event_route[tls:connection-out] did not log"
            else:
                assert status >= 400, "PBX got %s" % status
                # The core has connected already; nothing is sent on it.
                assert not any(c.handshake_ok or c.messages
                               for c in peer.connections), peer.connections
                assert server.logged(
                    "WARNING", r"refusing a TLS connection to 127\.0\.0\.1"), \
                    "the event route did not refuse"
                assert server.logged(
                    r"[A-Z]+", r"refused by event_route\[tls:connection-out\]"), \
                    "the module did not log the refusal"
