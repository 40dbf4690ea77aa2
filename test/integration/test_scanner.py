"""Secure defaults, as a scanner sees them (issue 7).

The server runs with the module's defaults (no tls_method, cipher_list or
cipher_suites set) and is scanned with `sslscan --no-colour` (Debian's
sslscan package).  From its report:

- only TLSv1.2 and TLSv1.3 are enabled;
- every TLS 1.2 suite it accepts is forward-secret (ECDHE or DHE) and AEAD
  (GCM or CHACHA20-POLY1305);
- renegotiation is secure or not supported at all;
- compression is disabled (this sslscan build cannot test compression: it
  says so, and `openssl s_client` then shows "Compression: NONE").

And the certificate chain is served in order: with a certificate file
holding leaf + intermediate (root -> intermediate -> leaf),
`openssl s_client -showcerts` shows the leaf at depth 0 issued by the
intermediate at depth 1, issued by the root, and verifies against the root
alone.
"""

import os
import re
import shutil
import subprocess

import harness

SCAN_TIMEOUT = 300


def _run(args, timeout=60):
    result = subprocess.run(args, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    return result.returncode, result.stdout + result.stderr


def _section(report, title):
    """The lines of one "  Title:" section of sslscan's report."""
    lines, inside = [], False
    for line in report.splitlines():
        if re.match(r"^\s{2}\S.*:\s*$", line):
            inside = line.strip().rstrip(":") == title
            continue
        if inside and line.strip():
            lines.append(line.strip())
    return lines


def test_scanner_default_settings(t):
    assert shutil.which("sslscan"), "sslscan is not installed (apt-get " \
        "install sslscan)"
    server = t.kamailio({"tls_method": None})
    status, report = _run(["sslscan", "--no-colour",
                           "127.0.0.1:%d" % server.tls_port], SCAN_TIMEOUT)
    assert status == 0, report[-2000:]

    protocols = dict(line.split()[:2]
                     for line in _section(report, "SSL/TLS Protocols"))
    assert protocols == {"SSLv2": "disabled", "SSLv3": "disabled",
                         "TLSv1.0": "disabled", "TLSv1.1": "disabled",
                         "TLSv1.2": "enabled", "TLSv1.3": "enabled"}, \
        protocols

    suites = [line.split() for line in
              _section(report, "Supported Server Cipher(s)")
              if line.startswith(("Preferred", "Accepted"))]
    versions = {s[1] for s in suites}
    assert versions == {"TLSv1.2", "TLSv1.3"}, suites
    tls12 = [s[4] for s in suites if s[1] == "TLSv1.2"]
    assert tls12, suites
    weak = [name for name in tls12
            if not (re.match(r"(ECDHE|DHE)-", name)
                    and re.search(r"-GCM-|CHACHA20-POLY1305", name))]
    assert not weak, "TLS 1.2 suites that are not forward-secret AEAD: " \
        "%s" % weak

    reneg = _section(report, "TLS renegotiation")
    assert reneg in (["Secure session renegotiation supported"],
                     ["Session renegotiation not supported"]), reneg

    compression = _section(report, "TLS Compression")
    if compression != ["Compression disabled"]:
        assert any("does not support compression" in line
                   for line in compression), compression
        # This sslscan cannot tell: ask a TLS 1.2 handshake instead.
        status, out = _run(["openssl", "s_client", "-connect",
                            "127.0.0.1:%d" % server.tls_port, "-tls1_2",
                            "-CAfile", t.certs.ca_cert])
        assert "Compression: NONE" in out, out[-1500:]

    heartbleed = _section(report, "Heartbleed")
    assert all("not vulnerable to heartbleed" in line
               for line in heartbleed), heartbleed


def _make_chain(directory):
    """root -> intermediate -> leaf; returns (root, leaf+intermediate file,
    leaf key)."""
    os.makedirs(directory, exist_ok=True)
    cnf = os.path.join(directory, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(harness.OPENSSL_CNF)
    paths = {name: (os.path.join(directory, name + ".pem"),
                    harness.new_key(os.path.join(directory, name + ".key"),
                                    "EC"))
             for name in ("root", "intermediate", "leaf")}
    harness.self_sign(*paths["root"], "/CN=Scanner Test Root", cnf,
                      "chain_ca")
    for name, subject, issuer, ext in (
            ("intermediate", "/CN=Scanner Test Intermediate", "root",
             "chain_ca"),
            ("leaf", "/CN=localhost", "intermediate", "server")):
        harness.sign(*paths[name], subject, cnf, ext, paths[issuer],
                     len(name) * 1000 + 7)
    bundle = harness.concatenate(os.path.join(directory, "leaf-chain.pem"),
                                 paths["leaf"][0], paths["intermediate"][0])
    return paths["root"][0], bundle, paths["leaf"][1]


def test_scanner_certificate_chain_in_order(t):
    root, bundle, key = _make_chain(t.path("chain"))
    server = t.kamailio({"tls_method": None, "certificate": bundle,
                         "private_key": key})
    for version in ("-tls1_2", "-tls1_3"):
        status, out = _run(["openssl", "s_client", "-connect",
                            "127.0.0.1:%d" % server.tls_port, version,
                            "-showcerts", "-CAfile", root])
        chain = re.findall(r"^\s*(\d+) s:(.*)\n\s*i:(.*)$", out, re.M)
        names = [(int(depth), re.sub(r".*CN\s*=\s*", "", s).strip(),
                  re.sub(r".*CN\s*=\s*", "", i).strip())
                 for depth, s, i in chain]
        assert names == [
            (0, "localhost", "Scanner Test Intermediate"),
            (1, "Scanner Test Intermediate", "Scanner Test Root")], \
            "%s: chain served as %s" % (version, names)
        assert "Verify return code: 0 (ok)" in out, out[-1500:]
        assert out.count("-----BEGIN CERTIFICATE-----") == 2, \
            "%s: expected exactly leaf and intermediate" % version
