"""Reloading the TLS configuration: `kamcmd tls.reload` and the automatic
reload (modparam auto_reload).

A reload builds a new generation of domains from the config file and the
files it names; a bad file is refused and the running generation stays.
Connections keep the generation they started with.  Each test checks which
certificate new connections get (its CN, read back by the client), that old
connections keep answering, and the counters of tls.info.

No test asserts a duration: waits poll with a bound and fail only when what
they wait for never comes.
"""

import os
import re
import shutil
import threading
import time

import harness
from test_domains import (POLL_TIMEOUT, domain_keys, line_of, peer_cn, pki,
                          section, served_cn, start, write_cfg)

RELOADED = r"^TLS configuration reloaded: generation (\d+)$"

# What the shared-memory test measured last (read by whoever runs it by
# hand; the runner prints nothing but PASS/FAIL).
LAST_SHM = {}
LAST_LOAD = {}


def reload_ok(server, generation):
    out = harness.rpc_ok(server, "tls.reload")
    assert out == "ok: generation %d" % generation, out


def reloaded_lines(server):
    return server.logged("INFO", RELOADED)


def options_ok(conn):
    reply = conn.request(conn.build("OPTIONS"))
    assert reply.status == 200, "OPTIONS got %r" % reply


def two_domain_cfg(default, named):
    """[server:default] with `default`, [server:any] a.example with
    `named` ((cert, key) pairs)."""
    return (section("server:default", **domain_keys(default))
            + section("server:any", server_name="a.example",
                      **domain_keys(named)))


def assert_reason(text, cfg, lines, pattern, files, short_ok=False,
                  what="reason"):
    """text is "<cfg>:<line>: <reason>" with line in `lines` and reason
    matching `pattern`, whose {} stand for `files`; with short_ok the
    files (cfg too) may appear as their base names."""
    def name(path):
        if short_ok:
            return "(?:%s|%s)" % (re.escape(path),
                                  re.escape(os.path.basename(path)))
        return re.escape(path)
    m = re.match(name(cfg) + r":(\d+): (.*)$", text)
    assert m, "%s %r does not start with %s:<line>:" % (what, text, cfg)
    assert int(m.group(1)) in lines, "%s names line %s, expected %r: %r" \
        % (what, m.group(1), lines, text)
    want = pattern.format(*(name(f) for f in files))
    assert re.search(want, m.group(2)), "%s %r does not match %r" \
        % (what, text, want)


# ====================================================================== tests

def test_reload_bad_config_refused(t):
    """A reload of a broken file is refused with the file:line error; the
    running configuration stays (new connections get the old certificate)
    and tls.info counts the failure.  The module logs it as a WARNING."""
    p = pki(t)
    old = p.leaf("reload old")
    server = start(t, two_domain_cfg(old, p.leaf("reload old a")))
    cfg = server.tls_cfg
    before = t.connect(server)
    try:
        options_ok(before)
        assert peer_cn(before) == "reload old"

        new = p.leaf("reload new")
        missing = os.path.join(server.dir, "gone", "absent.pem")
        bad_bool = two_domain_cfg(new, new) + "verify_cert = perhaps\n"
        duplicate = two_domain_cfg(new, new) + "[server:default]\n"
        broken = [
            # (text, accepted line numbers, pattern of the message; {} are
            # the files it names)
            (bad_bool, [line_of(bad_bool, "perhaps")],
             r"verify_cert: bad value 'perhaps'", ()),
            (duplicate, [line_of(duplicate, "[server:default]", 2)],
             r"duplicate section \[server:default\]", ()),
            (section("server:default", certificate=missing,
                     private_key=new[1]),
             [1, 2], r"certificate: cannot read '{}'", (missing,)),
            (section("server:default", certificate=new[0],
                     private_key=old[1]),
             [1, 3], r"private_key: '{}' does not match the certificate '{}'",
             (old[1], new[0])),
        ]
        for n, (text, lines, pattern, files) in enumerate(broken, 1):
            write_cfg(server, text)
            fault, out = harness.rpc(server, "tls.reload")
            if (fault, out) == (None, ""):
                warned = server.logged("WARNING", r"reload refused")
                raise AssertionError(
                    "broken reload %d: kamcmd tls.reload printed nothing (no"
                    " fault reached it); the refusal logged was %d characters"
                    " long: %s" % (n, len(warned[-1].split("stays: ", 1)[-1])
                                   if warned else 0,
                                   warned[-1] if warned else "none"))
            assert fault == 500, "broken reload %d answered %r %r" \
                % (n, fault, out)
            # The fault names the file and line; a reason too long for
            # binrpc (255 bytes) names files by their base names.
            assert_reason(out, cfg, lines, pattern, files, short_ok=True,
                          what="broken reload %d fault" % n)
            # Logged once, as a WARNING, in full.
            warned = server.logged("WARNING", r"^reload refused, the running"
                                   r" configuration stays: ")
            assert len(warned) == n, "WARNING lines: %r" % warned
            assert_reason(warned[-1].split("stays: ", 1)[1], cfg, lines,
                          pattern, files, what="broken reload %d WARNING" % n)
            info = harness.tls_info(server)
            assert (info["reloads_failed"], info["reloads"],
                    info["generation"]) == (n, 0, 1), info
            # The old configuration still serves, old and new connections.
            assert served_cn(t, server) == "reload old"
            assert served_cn(t, server, "a.example") == "reload old a"
            options_ok(before)
        assert not reloaded_lines(server)

        # Fixed, it loads.
        write_cfg(server, two_domain_cfg(new, new))
        reload_ok(server, 2)
        assert served_cn(t, server) == "reload new"
        info = harness.tls_info(server)
        assert (info["reloads_failed"], info["reloads"],
                info["generation"]) == (len(broken), 1, 2), info
        options_ok(before)
    finally:
        before.close()


def test_reload_new_certificate(t):
    """After a reload new connections get the new certificates; one opened
    before keeps working on the old generation."""
    p = pki(t)
    server = start(t, two_domain_cfg(p.leaf("gen1 default"),
                                     p.leaf("gen1 a")))
    old = t.connect(server, sni="a.example")
    old_default = t.connect(server)
    try:
        options_ok(old)
        options_ok(old_default)
        assert peer_cn(old) == "gen1 a"

        write_cfg(server, two_domain_cfg(p.leaf("gen2 default"),
                                         p.leaf("gen2 a")))
        reload_ok(server, 2)
        assert served_cn(t, server) == "gen2 default"
        assert served_cn(t, server, "a.example") == "gen2 a"
        # Both old connections still answer, several times.
        for _ in range(3):
            options_ok(old)
            options_ok(old_default)
        assert peer_cn(old) == "gen1 a"

        # tls.domains shows the new generation.
        doms = harness.rpc_ok(server, "tls.domains")
        assert "generation: 1\n" not in doms and "generation: 2" in doms, doms
        assert "/CN=gen2 a" in doms and "/CN=gen1" not in doms, doms

        # A second reload; the oldest connections still answer, then end.
        write_cfg(server, two_domain_cfg(p.leaf("gen3 default"),
                                         p.leaf("gen3 a")))
        reload_ok(server, 3)
        assert served_cn(t, server, "a.example") == "gen3 a"
        options_ok(old)
        options_ok(old_default)
    finally:
        old.close()
        old_default.close()
    harness.poll("connections closed",
                 lambda: harness.tls_info(server)["connections"] == 0,
                 POLL_TIMEOUT)
    info = harness.tls_info(server)
    assert (info["reloads"], info["reloads_failed"], info["generation"]) \
        == (2, 0, 3), info
    assert len(reloaded_lines(server)) == 2


CONNECTIONS = 100
RELOADS = 100
MAX_REQUESTS = 20000        # per connection
MAX_NEW = 400               # new connections opened during the reloads
JOIN_TIMEOUT = 120


def test_reload_under_load(t):
    """100 reloads, alternating between two certificate sets, while 100
    connections send OPTIONS in a loop and one client keeps opening new
    connections: no request fails, every reload succeeds, no ERROR."""
    p = pki(t)
    cfgs = [two_domain_cfg(p.leaf("load default 0"), p.leaf("load a 0")),
            two_domain_cfg(p.leaf("load default 1"), p.leaf("load a 1"))]
    server = start(t, cfgs[0])
    conns = []
    try:
        for _ in range(CONNECTIONS):
            conns.append(t.connect(server))
        stop = threading.Event()
        sent = [0] * CONNECTIONS
        errors = []
        new_cns = []

        def sender(i):
            conn = conns[i]
            try:
                while not stop.is_set() and sent[i] < MAX_REQUESTS:
                    options_ok(conn)
                    sent[i] += 1
                stop.wait(JOIN_TIMEOUT)
                options_ok(conn)            # once more, after the reloads
                sent[i] += 1
            except Exception as exc:        # noqa: BLE001 (reported below)
                errors.append("connection %d, request %d: %r"
                              % (i, sent[i] + 1, exc))

        def newcomer():
            try:
                while not stop.is_set() and len(new_cns) < MAX_NEW:
                    new_cns.append(served_cn(t, server, "a.example"))
            except Exception as exc:        # noqa: BLE001
                errors.append("new connection %d: %r" % (len(new_cns), exc))

        threads = [threading.Thread(target=sender, args=(i,), daemon=True)
                   for i in range(CONNECTIONS)]
        threads.append(threading.Thread(target=newcomer, daemon=True))
        for thread in threads:
            thread.start()
        harness.poll("every connection sending",
                     lambda: all(sent) or errors, 60)
        try:
            for i in range(RELOADS):
                write_cfg(server, cfgs[(i + 1) % 2])
                reload_ok(server, i + 2)
        finally:
            stop.set()
            deadline = time.monotonic() + JOIN_TIMEOUT
            for thread in threads:
                thread.join(max(0.1, deadline - time.monotonic()))
        assert not any(th.is_alive() for th in threads), \
            "client threads still running %d s after the reloads" \
            % JOIN_TIMEOUT
        assert not errors, "%d failed: %s" % (len(errors), errors[:5])
        assert set(new_cns) <= {"load a 0", "load a 1"}, set(new_cns)
        info = harness.tls_info(server)
        assert (info["generation"], info["reloads"],
                info["reloads_failed"]) == (RELOADS + 1, RELOADS, 0), info
        assert len(reloaded_lines(server)) == RELOADS
        assert sum(sent) >= 2 * CONNECTIONS, sent
        LAST_LOAD.update(requests=sum(sent), least=min(sent),
                         new_connections=len(new_cns), info=info)
    finally:
        for conn in conns:
            conn.close()


SHM_EARLY = 10              # reloads before the first (reported) reading
SHM_WARMUP = ((200, 5), (500, 50))  # (reloads, one connection every N)
SHM_RELOADS = 1000
SHM_EVERY = 50              # a connection every 50 reloads while measuring
SHM_SETTLE = 1.0            # seconds before each measurement
SHM_TOLERANCE = 0.05         # see the test's docstring
SHM_CHECK_EVERY = 100       # reloads between interim readings
# Interim growth that ends the test at once, before the module's own
# low-memory threshold refuses connections: connections held over reloads
# legitimately pin their generation (each close to 1 MB: the client domain
# holds the system CA store), a leak grows without bound.
SHM_GIVE_UP = 24 * 1024 * 1024


def test_reload_shared_memory_stable(t):
    """1,000 reloads (with connections holding older generations now and
    then) leave shared memory where it was before them: old generations
    are freed with their last connection.

    Read from core.shmmem after all clients closed and a short settle.
    Two checks:
     - exact: at every such reading tls.info generations_live is 1 (no
       older generation outlives its last connection);
     - approximate: the module keeps freed blocks in bounded per-process
       caches and free space in its slab pages (tls.info shm_cached); what
       is really in use is `used` minus that, and it must stay within 5% of
       the baseline (85 KB here: a leak of 100 bytes per reload fails).
       Since OpenSSL's small blocks come from slab pages, this reading
       has drifted up by 1.2% to 3.4% over the 1,000 reloads in CI runs
       (20 to 60 KB, growing more slowly the longer it runs). The same
       reload and connection pattern driven outside this harness stays
       flat within 0.5% over 3,000 reloads when no domain verifies with
       the system CA store, and moves by about +-1% when the client
       default domain loads it (about 0.9 MB per generation, as here);
       what makes the CI runs drift further is not pinned down.

    The baseline is not the reading after 10 reloads (kept for the failure
    message).  Measured on this module: what is in use grows by some
    300 KB over the first few hundred reloads (OpenSSL's state in each TCP
    reader that handles connections of new generations), then stays flat
    within 0.3% over 3,000 more; and a reading right after the clients
    closed depends on how many reloads their connections spanned (one
    connection held over 100 reloads leaves ~75 KB until the next reloads).
    So the warm-up first opens many connections (one every 5 reloads, 200
    reloads), then runs 500 reloads in exactly the pattern measured after
    it: a connection every 50 reloads, kept over the next ones, at most 4
    at once, all closed at the end."""
    p = pki(t)
    cfg = two_domain_cfg(p.leaf("shm default"), p.leaf("shm a"))
    server = start(t, cfg)
    generation = [1]

    def reading():
        """(used, real_used, shm_cached) now."""
        cached = harness.tls_info(server).get("shm_cached", 0)
        return harness.shm_used(server) + (cached,)

    def in_use(r):
        return r[0] - r[2]

    def settle_idle():
        harness.poll("no TLS connection left",
                     lambda: harness.tls_info(server)["connections"] == 0,
                     POLL_TIMEOUT)
        time.sleep(SHM_SETTLE)
        # No connection left: no older generation may be alive either.
        live = harness.tls_info(server)["generations_live"]
        assert live == 1, "%d configuration generations alive with no " \
            "connection left (after %d reloads)" % (live, generation[0] - 1)
        now = reading()
        LAST_SHM["idle"].append((generation[0] - 1,) + now)
        return now

    def trajectory():
        return "used/real_used/shm_cached: %s; interim: %s" % (
            ", ".join("after %d: %d/%d/%d" % r for r in LAST_SHM["idle"]),
            ", ".join("after %d: %d/%d/%d" % r for r in LAST_SHM["readings"]))

    def reloads(count, every, check=None):
        """`count` reloads; a connection opened every `every` reloads (with
        SNI every other time) is kept over the next ones, at most 4 at
        once.  Returns the idle reading after them."""
        held = []
        try:
            for i in range(count):
                if i % every == 0:
                    sni = "a.example" if (i // every) % 2 else None
                    conn = t.connect(server, sni=sni)
                    options_ok(conn)
                    held.append(conn)
                    if len(held) > 3:
                        options_ok(held[0])
                        held.pop(0).close()
                generation[0] += 1
                reload_ok(server, generation[0])
                if check and (i + 1) % SHM_CHECK_EVERY == 0:
                    check(i + 1)
            for conn in held:
                options_ok(conn)
        finally:
            for conn in held:
                conn.close()
        return settle_idle()

    LAST_SHM.clear()
    LAST_SHM.update(readings=[], idle=[])
    # The first reloads, each with a connection open across it.
    for _ in range(SHM_EARLY):
        with t.connect(server, sni="a.example") as conn:
            options_ok(conn)
            generation[0] += 1
            reload_ok(server, generation[0])
            options_ok(conn)
    settle_idle()
    for count, every in SHM_WARMUP:
        baseline = reloads(count, every)
    warmup = generation[0] - 1
    LAST_SHM["baseline"] = (warmup,) + baseline

    def check(done):
        now = reading()
        LAST_SHM["readings"].append((warmup + done,) + now)
        assert now[0] <= baseline[0] + SHM_GIVE_UP, \
            "shared memory keeps growing with reloads (stopped after %d of" \
            " %d): %s" % (done, SHM_RELOADS, trajectory())

    after = reloads(SHM_RELOADS, SHM_EVERY, check)
    info = harness.tls_info(server)
    LAST_SHM.update(after=after, info=info)
    assert (info["generation"], info["reloads_failed"]) \
        == (warmup + SHM_RELOADS + 1, 0), info
    b, a = in_use(baseline), in_use(after)
    assert abs(a - b) <= SHM_TOLERANCE * b, \
        "shm used minus shm_cached: %d after %d reloads, %d after %d more" \
        " (%+.2f%%); %s" % (b, warmup, a, SHM_RELOADS, 100.0 * (a - b) / b,
                           trajectory())


AUTO_QUIET = 2.5            # seconds: more than two checks of the timer


def test_reload_auto(t):
    """auto_reload=1: replacing the certificate and key files (new files
    renamed over the old ones), then the config file, then the CA file,
    each causes exactly one reload; new connections get the new
    certificate, an old connection keeps working."""
    p = pki(t)
    first, second, third = (p.leaf("auto 1"), p.leaf("auto 2"),
                            p.leaf("auto 3"))
    # The files the config names, in a folder of their own.
    files = os.path.join(t.dir, "live")
    os.makedirs(files)
    live = (os.path.join(files, "server.pem"),
            os.path.join(files, "server.key"))
    ca = os.path.join(files, "ca.pem")

    def install(src, dst):
        tmp = dst + ".tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)

    install(first[0], live[0])
    install(first[1], live[1])
    install(t.certs.ca_cert, ca)
    cfg = (section("server:default", **domain_keys(live))
           + section("server:any", server_name="v.example",
                     verify_certificate="yes", ca_list=ca,
                     **domain_keys(live)))
    server = start(t, cfg, {"auto_reload": 1})

    old = t.connect(server)
    try:
        options_ok(old)
        assert peer_cn(old) == "auto 1"
        time.sleep(AUTO_QUIET)
        assert not reloaded_lines(server), "reloaded without a change"

        def changed(number, check, what):
            harness.poll(what, check, POLL_TIMEOUT)
            time.sleep(AUTO_QUIET)          # no second reload follows
            lines = reloaded_lines(server)
            gens = [int(re.search(r"generation (\d+)", line).group(1))
                    for line in lines]
            assert gens == list(range(2, number + 2)), \
                "after change %d: %r" % (number, lines)
            assert harness.tls_info(server)["generation"] == number + 1
            options_ok(old)

        # 1: certificate and key replaced.
        install(second[1], live[1])
        install(second[0], live[0])
        changed(1, lambda: served_cn(t, server) == "auto 2",
                "the replaced certificate served")

        # 2: the config file replaced (other certificate files).
        write_cfg(server, section("server:default", **domain_keys(third))
                  + section("server:any", server_name="v.example",
                            verify_certificate="yes", ca_list=ca,
                            **domain_keys(live)))
        changed(2, lambda: served_cn(t, server) == "auto 3",
                "the new config file's certificate served")

        # 3: the CA file replaced (same content, new file).
        install(t.certs.ca_cert, ca)
        changed(3, lambda: harness.tls_info(server)["generation"] == 4,
                "a reload for the CA file")
        assert served_cn(t, server) == "auto 3"
        assert served_cn(t, server, "v.example",
                         client_cert=t.certs.client) == "auto 2"
        assert peer_cn(old) == "auto 1"
    finally:
        old.close()
    info = harness.tls_info(server)
    # A reload that sees the new key before the new certificate is refused
    # (and retried at the next change, the certificate's rename).
    assert info["reloads"] == 3 and info["reloads_failed"] <= 1, info
