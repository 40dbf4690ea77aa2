#!/usr/bin/env python3
"""Turn bench/out/raw.txt (written by run.sh) into results.md and chart.png.

Every figure comes from the measured records; a cell that crashed, did not
start or completed nothing is shown as such, never filled in.
Usage: report.py OUTDIR
"""
import os
import statistics
import subprocess
import sys

MODULES = ("debian", "ours")


def kv_line(line):
    d = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            d.setdefault(k, v)
    return d


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def load(outdir):
    recs = []
    with open(os.path.join(outdir, "raw.txt"), errors="replace") as f:
        for line in f:
            if line.strip():
                recs.append(kv_line(line))
    ceil = {}
    path = os.path.join(outdir, "ceiling.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.startswith("RESULT "):
                    d = kv_line(line[7:])
                    ceil[(d.get("label"), d.get("tls"), d.get("mode"))] = d
    machine = {}
    path = os.path.join(outdir, "machine.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    machine[k] = v
    return recs, ceil, machine


class Cell:
    """All rounds of one (module, cell)."""

    def __init__(self, recs):
        self.recs = recs

    @property
    def rounds(self):
        return len(self.recs)

    def crashed(self):
        return sum(1 for r in self.recs if r.get("crashed") == "yes")

    def nostart(self):
        return sum(1 for r in self.recs if r.get("status") == "nostart")

    def valid(self):
        out = []
        for r in self.recs:
            if r.get("crashed") == "yes" or r.get("status") == "nostart":
                continue
            if r.get("loadgen") == "failed" or num(r.get("ok")) in (None, 0):
                continue
            out.append(r)
        return out

    def metric(self, fn):
        vals = []
        for r in self.valid():
            try:
                v = fn(r)
            except (TypeError, ValueError, ZeroDivisionError):
                v = None
            if v is not None:
                vals.append(v)
        return vals

    def total(self, key):
        return sum(num(r.get(key)) or 0 for r in self.recs)


def ms(x):
    v = num(x)
    return "-" if v is None or v < 0 else f"{v:.1f}"


def med(vals):
    return statistics.median(vals) if vals else None


def fmt(v, digits=0, unit=""):
    if v is None:
        return "n/a"
    if digits == 0:
        s = f"{v:,.0f}"
    else:
        s = f"{v:,.{digits}f}"
    return s + unit


def fmt_vals(vals, digits=0):
    """median, with the spread when there are several rounds"""
    if not vals:
        return None
    m = med(vals)
    s = fmt(m, digits)
    if len(vals) > 1:
        s += f" ({fmt(min(vals), digits)}–{fmt(max(vals), digits)})"
    return s


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{digits}f}×"


# ------------------------------------------------------------------ metrics

def hs_per_cpu(r):
    cpu = num(r["srv_cpu"])
    return num(r["handshakes"]) / cpu if cpu and cpu > 0 else None


def us_per_hs(r):
    hs = num(r["handshakes"])
    return num(r["srv_cpu"]) * 1e6 / hs if hs else None


def cycles_per_cpu(r):
    cpu = num(r["srv_cpu"])
    return num(r["ok"]) / cpu if cpu and cpu > 0 else None


def us_per_cycle(r):
    ok = num(r["ok"])
    return num(r["srv_cpu"]) * 1e6 / ok if ok else None


def req_per_cpu(r):
    cpu = num(r["srv_cpu"])
    return num(r["ok"]) / cpu if cpu and cpu > 0 else None


def us_per_req(r):
    ok = num(r["ok"])
    return num(r["srv_cpu"]) * 1e6 / ok if ok else None


def rate(r):
    return num(r["rate"])


def resumed_pct(r):
    hs = num(r["handshakes"])
    return 100.0 * num(r["resumed"]) / hs if hs else None


def shm_real(field):
    def f(r):
        parts = r.get(field, "NA,NA").split(",")
        return num(parts[1]) if len(parts) > 1 else None
    return f


def shm_per_conn(r):
    b, a = shm_real("shm_before")(r), shm_real("shm_after")(r)
    up = num(r.get("idle_up"))
    if b is None or a is None or not up:
        return None
    return (a - b) / up


def pss_per_conn(r):
    b, a = num(r.get("pss_before")), num(r.get("pss_after"))
    up = num(r.get("idle_up"))
    if b is None or a is None or not up:
        return None
    return (a - b) * 1024 / up


def mem_valid(cell):
    out = []
    for r in cell.recs:
        if r.get("crashed") == "yes" or r.get("status") == "nostart":
            continue
        if not num(r.get("idle_up")):
            continue
        out.append(r)
    return out


# ------------------------------------------------------------------ report

def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "out")
    recs, ceil, machine = load(outdir)
    cells = {}
    stops = {m: [] for m in MODULES}
    for r in recs:
        m, c = r.get("module"), r.get("cell")
        if c and c.startswith("stop."):
            stops.setdefault(m, []).append(r)
            continue
        cells.setdefault((m, c), []).append(r)
    cells = {k: Cell(v) for k, v in cells.items()}
    empty = Cell([])

    def cell(m, c):
        return cells.get((m, c), empty)

    def status(m, c):
        """'' if every round is usable, else a short note"""
        ce = cell(m, c)
        if ce.rounds == 0:
            return "not run"
        notes = []
        if ce.crashed():
            notes.append(f"crashed {ce.crashed()}/{ce.rounds}")
        if ce.nostart():
            notes.append(f"no start {ce.nostart()}/{ce.rounds}")
        errs = int(ce.total("errors"))
        if errs:
            notes.append(f"{errs} errors")
        bugs = int(ce.total("bug_lines"))
        if bugs:
            notes.append(f"{bugs} BUG lines")
        return ", ".join(notes)

    def show(m, c, fn, digits=0, unit=""):
        ce = cell(m, c)
        v = fmt_vals(ce.metric(fn), digits)
        if v is None:
            if ce.rounds == 0:
                return "not run"
            if ce.crashed():
                return f"**crashed {ce.crashed()}/{ce.rounds}**"
            if ce.nostart():
                return f"**no start {ce.nostart()}/{ce.rounds}**"
            return "**nothing completed**"
        v += unit
        if any((num(r.get("bug_lines")) or 0) > 0 for r in ce.valid()):
            v += " †"
        if ce.crashed():
            v += f" (**crashed {ce.crashed()}/{ce.rounds}**)"
        return v

    def m_of(m, c, fn):
        return med(cell(m, c).metric(fn))

    def ceil_us(cert, tls, mode):
        d = ceil.get((cert, tls, mode))
        return num(d.get("server_us")) if d else None

    L = []
    L.append("# TLS module benchmark: Debian's tls.so vs ours")
    L.append("")
    L.append(f"- date: {machine.get('date', '?')}; run took {machine.get('total_secs', '?')} s"
             f"{' (BENCH_QUICK smoke run)' if machine.get('settings', '').startswith('quick=1') else ''}")
    L.append(f"- machine: {machine.get('nproc', '?')} cores, {machine.get('cpu', '?')}, "
             f"kernel {machine.get('kernel', '?')}, {machine.get('os', '?')}")
    L.append(f"- host: {machine.get('kamailio', '?')}, {machine.get('openssl', '?')}")
    L.append(f"- Debian's module: {machine.get('debian_module', '?')}")
    L.append(f"- our module: {machine.get('our_module', '?')}")
    L.append(f"- settings: {machine.get('settings', '?')}")
    L.append(f"- load average at start / end: {machine.get('loadavg_start', '?')} / "
             f"{machine.get('loadavg_end', '?')}")
    other = [num(r.get("other_cpu")) / max(num(r.get("wall")) or 1, 1e-9)
             for r in recs if num(r.get("other_cpu")) is not None and num(r.get("wall"))]
    if other:
        L.append(f"- other processes on the machine used {statistics.mean(other):.2f} cores on average "
                 f"during the load cells (max {max(other):.2f}) out of {machine.get('nproc', '?')}: "
                 "rates (per second) suffer from that; figures per server CPU-second much less.")
    L.append("")
    L.append("Same kamailio binary, certificates and configuration for both modules "
             "(`children=2`, OPTIONS answered by `sl_send_reply`); server CPU is utime+stime of "
             "all kamailio processes, from /proc, over the cell. Each value is the median over "
             "rounds, with the range in brackets when there were several. "
             "\"per CPU-s\" = per second of server CPU. The OpenSSL ceiling is `hsceiling`: "
             "the same handshake, one OPTIONS/200 and close_notify, server and client SSL in one "
             "process over a BIO pair, server side timed with the thread CPU clock.")
    L.append("")

    # ---- a
    L.append("## a. Full handshakes (tcp_children=1, "
             f"{cell('debian', 'hs.rsa.1.3').recs[0].get('conc', '?') if cell('debian', 'hs.rsa.1.3').recs else '?'} clients, "
             "new connection + OPTIONS + close each)")
    L.append("")
    L.append("| cert | TLS | Debian hs/s | ours hs/s | Debian hs per CPU-s | ours hs per CPU-s | "
             "ours/Debian | Debian µs CPU/hs | ours µs CPU/hs | ceiling µs/hs | Debian/ceiling | ours/ceiling | "
             "TLS part/ceiling D / O |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    chart_hs = []
    tcp_us = {m: m_of(m, "hs.tcp", us_per_cycle) for m in MODULES}
    for cert in ("rsa", "ecdsa"):
        for v in ("1.3", "1.2"):
            c = f"hs.{cert}.{v}"
            dh, oh = m_of("debian", c, hs_per_cpu), m_of("ours", c, hs_per_cpu)
            du, ou = m_of("debian", c, us_per_hs), m_of("ours", c, us_per_hs)
            cu = ceil_us(cert, v, "full")
            dpart = du - tcp_us["debian"] if du is not None and tcp_us["debian"] is not None else None
            opart = ou - tcp_us["ours"] if ou is not None and tcp_us["ours"] is not None else None
            L.append(f"| {cert.upper()} | {v} | {show('debian', c, rate)} | {show('ours', c, rate)} | "
                     f"{show('debian', c, hs_per_cpu)} | {show('ours', c, hs_per_cpu)} | {ratio(oh, dh)} | "
                     f"{show('debian', c, us_per_hs)} | {show('ours', c, us_per_hs)} | {fmt(cu)} | "
                     f"{ratio(du, cu)} | {ratio(ou, cu)} | {ratio(dpart, cu)} / {ratio(opart, cu)} |")
            chart_hs.append((f"{'EC' if cert == 'ecdsa' else 'RSA'} {v}", dh, oh, 1e6 / cu if cu else None))
    L.append(f"| plain TCP | - | {show('debian', 'hs.tcp', rate)} | {show('ours', 'hs.tcp', rate)} | "
             f"{show('debian', 'hs.tcp', cycles_per_cpu)} | {show('ours', 'hs.tcp', cycles_per_cpu)} | "
             f"{ratio(m_of('ours', 'hs.tcp', cycles_per_cpu), m_of('debian', 'hs.tcp', cycles_per_cpu))} | "
             f"{show('debian', 'hs.tcp', us_per_cycle)} | {show('ours', 'hs.tcp', us_per_cycle)} | - | - | - | - |")
    L.append("")
    L.append("ours/Debian > 1: ours does more handshakes per server CPU-second. x/ceiling: server CPU per "
             "connection relative to OpenSSL alone doing the same (1.00× = nothing beyond OpenSSL). "
             "The plain TCP row is the same cycle (connect, OPTIONS, 200, close) without TLS, on the same "
             "instance: what kamailio itself spends per connection. \"TLS part\" = µs CPU/hs minus that "
             "plain TCP figure, over the ceiling: the module's TLS work against OpenSSL's.")
    L.append("")

    def part(us, m):
        t = tcp_us.get(m)
        return us - t if us is not None and t is not None else None

    # ---- b
    L.append("## b. Resumption (tcp_children=4, RSA, each client offers its previous session)")
    L.append("")
    L.append("| TLS | Debian resumed | ours resumed | Debian hs/s | ours hs/s | Debian hs per CPU-s | "
             "ours hs per CPU-s | ours/Debian | Debian µs CPU/hs | ours µs CPU/hs | ceiling µs (resumed) | "
             "Debian/ceiling | ours/ceiling | TLS part/ceiling D / O |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for v in ("1.3", "1.2"):
        c = f"res.rsa.{v}"
        dh, oh = m_of("debian", c, hs_per_cpu), m_of("ours", c, hs_per_cpu)
        du, ou = m_of("debian", c, us_per_hs), m_of("ours", c, us_per_hs)
        cu = ceil_us("rsa", v, "resume")
        dr, orr = show("debian", c, resumed_pct, 1, " %"), show("ours", c, resumed_pct, 1, " %")
        L.append(f"| {v} | {dr} | {orr} | {show('debian', c, rate)} | {show('ours', c, rate)} | "
                 f"{show('debian', c, hs_per_cpu)} | {show('ours', c, hs_per_cpu)} | {ratio(oh, dh)} | "
                 f"{show('debian', c, us_per_hs)} | {show('ours', c, us_per_hs)} | {fmt(cu)} | "
                 f"{ratio(du, cu)} | {ratio(ou, cu)} | {ratio(part(du, 'debian'), cu)} / "
                 f"{ratio(part(ou, 'ours'), cu)} |")
        chart_hs.append((f"RSA {v} res.", dh, oh, 1e6 / cu if cu else None))
    L.append("")
    L.append("\"TLS part\" as in a: minus the plain TCP cycle of table a. "
             "\"hs per CPU-s\" counts every handshake of the cell, resumed or not (the first one of "
             "each client is always full). The resumed ceiling is OpenSSL resuming every time.")
    L.append("")

    # ---- c
    L.append("## c. Persistent connections (ECDSA, TLS 1.3; "
             f"{cell('debian', 'per.tls.tc1').recs[0].get('conc', '?') if cell('debian', 'per.tls.tc1').recs else '?'} "
             f"connections, {cell('debian', 'per.tls.tc1').recs[0].get('window', '?') if cell('debian', 'per.tls.tc1').recs else '?'} "
             "pipelined OPTIONS each)")
    L.append("")
    L.append("| readers | Debian TLS req/s | ours TLS req/s | ours/Debian | plain TCP req/s (Debian's run) | "
             "plain TCP req/s (our run) | TLS/TCP Debian | TLS/TCP ours | Debian TLS µs CPU/req | "
             "ours TLS µs CPU/req | TCP µs CPU/req (D / O) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for tc in (1, 4):
        t, p = f"per.tls.tc{tc}", f"per.tcp.tc{tc}"
        dt, ot = m_of("debian", t, rate), m_of("ours", t, rate)
        dp, op = m_of("debian", p, rate), m_of("ours", p, rate)
        L.append(f"| {tc} | {show('debian', t, rate)} | {show('ours', t, rate)} | {ratio(ot, dt)} | "
                 f"{show('debian', p, rate)} | {show('ours', p, rate)} | {ratio(dt, dp)} | {ratio(ot, op)} | "
                 f"{show('debian', t, us_per_req, 1)} | {show('ours', t, us_per_req, 1)} | "
                 f"{show('debian', p, us_per_req, 1)} / {show('ours', p, us_per_req, 1)} |")
    L.append("")
    L.append("TLS/TCP: TLS requests per second over plain-TCP requests per second on the same kamailio "
             "instance (1.00× = TLS costs nothing).")
    L.append("")

    # ---- d
    L.append("## d. Memory per idle connection (RSA, TLS 1.3, tcp_children=1)")
    L.append("")
    L.append("| module | connections up (TLS / TCP) | TLS shm/conn | plain TCP shm/conn | TLS cost/conn (shm) | "
             "TLS Pss/conn | TCP Pss/conn | last OPTIONS ok (TLS / TCP) |")
    L.append("|---|---|---|---|---|---|---|---|")
    chart_mem = []
    mem_fig = {}
    for m in MODULES:
        t, p = cell(m, "mem.tls"), cell(m, "mem.tcp")
        tv = [x for x in (shm_per_conn(r) for r in mem_valid(t)) if x is not None]
        pv = [x for x in (shm_per_conn(r) for r in mem_valid(p)) if x is not None]
        tps = [x for x in (pss_per_conn(r) for r in mem_valid(t)) if x is not None]
        pps = [x for x in (pss_per_conn(r) for r in mem_valid(p)) if x is not None]
        cost = med(tv) - med(pv) if tv and pv else None
        mem_fig[m] = (med(tv), med(pv), cost)

        def st(ce, vals):
            if vals:
                return fmt_vals(vals) + " B"
            s = []
            if ce.crashed():
                s.append(f"crashed {ce.crashed()}/{ce.rounds}")
            if not ce.rounds:
                s.append("not run")
            return "**" + (", ".join(s) or "no data") + "**"

        ups = "/".join(str(int(num(r.get("idle_up")) or 0)) for r in t.recs) or "-"
        upp = "/".join(str(int(num(r.get("idle_up")) or 0)) for r in p.recs) or "-"
        oks = "/".join(r.get("ok", "-") for r in t.recs) or "-"
        okp = "/".join(r.get("ok", "-") for r in p.recs) or "-"
        L.append(f"| {'Debian' if m == 'debian' else 'ours'} | {ups} / {upp} of "
                 f"{(t.recs or p.recs or [{}])[0].get('idle_n', '?')} | {st(t, tv)} | {st(p, pv)} | "
                 f"{fmt(cost) + ' B' if cost is not None else 'n/a'} | {st(t, tps)} | {st(p, pps)} | "
                 f"{oks} / {okp} |")
        chart_mem.append((m, med(tv), med(pv)))
    dc, oc = mem_fig.get("debian", (None,) * 3)[2], mem_fig.get("ours", (None,) * 3)[2]
    L.append("")
    L.append(f"TLS cost per connection, ours/Debian: {ratio(oc, dc)}. shm = kamailio's `core.shmmem` "
             "real_used after all connections are up minus before, divided by the connections up. "
             "Pss = proportional set size summed over all kamailio processes (counts memory "
             "outside shm too, e.g. if OpenSSL allocated with the system malloc).")
    L.append("")

    # ---- e
    L.append("## e. Concurrency: 20 new TLS 1.3 clients (RSA) against N readers")
    L.append("")
    L.append("| tcp_children | Debian | ours | Debian hs/s | ours hs/s | Debian errors | ours errors |")
    L.append("|---|---|---|---|---|---|---|")
    for tc in (1, 2, 4, 8):
        c = f"conc.tc{tc}"
        row = [str(tc)]
        for m in MODULES:
            ce = cell(m, c)
            if not ce.rounds:
                row.append("not run")
            elif ce.crashed():
                row.append(f"**crashed** ({ce.crashed()}/{ce.rounds} rounds)")
            elif ce.nostart():
                row.append("**did not start**")
            elif int(ce.total("bug_lines")):
                row.append(f"survived, **{int(ce.total('bug_lines'))} memory BUG lines** in its log")
            else:
                row.append("survived")
        row.append(show("debian", c, rate))
        row.append(show("ours", c, rate))
        for m in MODULES:
            ce = cell(m, c)
            errs = []
            for r in ce.recs:
                kinds = [f"{k[4:]} {r[k]}" for k in sorted(r) if k.startswith("err_") and r[k] not in ("0", "")]
                errs.append(", ".join(kinds) if kinds else "0")
            row.append(" / ".join(errs) if errs else "-")
        L.append("| " + " | ".join(row) + " |")
    L.append("")

    # ---- f
    L.append("## f. OpenSSL ceiling (in memory, server side only)")
    L.append("")
    L.append("| cert | TLS | mode | cycles | server µs/connection | of which handshake µs | per server CPU-s |")
    L.append("|---|---|---|---|---|---|---|")
    for (cert, v, mode), d in sorted(ceil.items()):
        if d.get("failed"):
            L.append(f"| {cert} | {v} | {mode} | **failed** | | | |")
            continue
        L.append(f"| {cert.upper()} | {v} | {mode} | {d.get('n')} | {fmt(num(d.get('server_us')), 1)} | "
                 f"{fmt(num(d.get('server_hs_us')), 1)} | {fmt(num(d.get('server_per_cpu_s')))} |")
    L.append("")

    # ---- g
    big = {m: cell(m, "big.tls").recs for m in MODULES}
    L.append("## g. Many idle TLS connections held by one kamailio (TLS 1.3, RSA, "
             f"tcp_children={next((r.get('tc') for m in MODULES for r in big[m]), '?')})")
    L.append("")
    L.append("| module | connections asked / held | setup s | handshakes full / resumed | server CPU µs per setup | "
             "shm per conn | Pss per conn | kamailio Pss / RSS sum after | last OPTIONS 200 | errors | crashed |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    big_notes = []
    for m in MODULES:
        name = "Debian" if m == "debian" else "ours"
        if not big[m]:
            L.append(f"| {name} | not run | | | | | | | | | |")
            continue
        for r in big[m]:
            st = r.get("status")
            if st == "skipped":
                L.append(f"| {name} | skipped (BENCH_BIG_DEBIAN_N=0) | | | | | | | | | |")
                continue
            if st:
                L.append(f"| {name} | {fmt(num(r.get('big_n_asked') or r.get('big_n')))} | **{st}** | | | | | | | | |")
                continue
            n, asked, up = num(r.get("big_n")), num(r.get("big_n_asked")), num(r.get("idle_up"))
            setup_cpu = num(r.get("srv_cpu_setup"))
            pss_b, pss_a = num(r.get("pss_before")), num(r.get("pss_after"))
            rss_a = num(r.get("rss_after"))
            spc = shm_per_conn(r)
            ppc = pss_per_conn(r)
            full, res = num(r.get("full")), num(r.get("resumed"))
            ok = num(r.get("ok"))
            errs = [f"{k[4:]} {r[k]}" for k in sorted(r) if k.startswith("err_") and r[k] not in ("0", "")]
            L.append(f"| {name} | {fmt(asked)} / **{fmt(up)}**"
                     f"{'' if up == n else ' of ' + fmt(n) + ' tried'} | {fmt(num(r.get('idle_setup_secs')), 1)} | "
                     f"{fmt(full)} / {fmt(res)} | "
                     f"{fmt(setup_cpu * 1e6 / up) if setup_cpu is not None and up else 'n/a'} | "
                     f"{fmt(spc / 1024, 1) + ' KB' if spc is not None else 'n/a'} | "
                     f"{fmt(ppc / 1024, 1) + ' KB' if ppc is not None else 'n/a'} | "
                     f"{fmt(pss_a / 1024) + ' MB' if pss_a is not None else 'n/a'} / "
                     f"{fmt(rss_a / 1024) + ' MB' if rss_a is not None else 'n/a'} | "
                     f"**{fmt(ok)}** of {fmt(up)} | {', '.join(errs) or '0'} | "
                     f"{'**yes**' if r.get('crashed') == 'yes' else 'no'}"
                     f"{' (' + r.get('bug_lines') + ' BUG lines)' if r.get('bug_lines', '0') != '0' else ''} |")
            if r.get("fd_capped") == "yes":
                big_notes.append(f"- {name}: {fmt(asked)} connections were asked, but the open-file hard limit "
                                 f"of this machine is {fmt(num(r.get('fd_hard')))} per process and cannot be "
                                 "raised here (no CAP_SYS_RESOURCE, not even for root): kamailio's TCP main "
                                 "process holds one descriptor per connection, so the cell ran with "
                                 f"{fmt(n)} (the limit less {fmt(num(r.get('fd_hard')) - n)} for kamailio's "
                                 "own descriptors). Where root may raise it, the cell runs the number asked.")
            elif asked is not None and n is not None and asked != n:
                big_notes.append(f"- {name}: {fmt(asked)} asked, {fmt(n)} run.")
            big_notes.append(f"- {name}: connections from {r.get('src', '?')} (one source address per "
                             f"{fmt(10000)} connections at most), kamailio with -m {r.get('shm_mb', '?')} MB, "
                             f"open_files_limit {r.get('open_files', '?')}, tcp_max_connections and "
                             f"tls_max_connections {fmt((n or 0) + 2048)}; kamailio held "
                             f"{r.get('tcp_open_after', '?').replace(',', ' (TLS: ')}) when all were up; the last "
                             f"OPTIONS and closes took {fmt(num(r.get('final_secs')), 1)} s; loadgen's own peak RSS "
                             f"{fmt((num(r.get('maxrss_kb')) or 0) / 1024)} MB.")
    L.append("")
    L.append("Each connection: TLS 1.3 handshake, one OPTIONS answered 200, then held idle; once all are up "
             "(setup s = until then), shm and Pss are read, and every connection sends one last OPTIONS, "
             "expects 200 and closes. The handshakes: loadgen's `--share-session`: one full handshake with "
             "the RSA-2048 certificate, every other connection resumes the newest ticket (a copy of it), so "
             "setting up costs a resumed handshake per connection, not a full one. "
             "shm per conn = `core.shmmem` real_used after all are up minus before, over the connections "
             "up, kamailio's own TCP part included (compare table d, where the TCP part is measured "
             "separately). Pss/RSS: summed over kamailio's processes (RSS counts the shared memory once per "
             "process that touched it; Pss shares it out). Debian's module runs with fewer connections "
             "(BENCH_BIG_DEBIAN_N) and one reader (it crashes with more): its per-connection figures are "
             "comparable, its totals are not.")
    L.append("")
    L.extend(big_notes)
    if big_notes:
        L.append("")

    # ---- s
    soak_recs = {m: [r for r in recs if r.get("module") == m and r.get("cell", "").startswith("soak.")]
                 for m in MODULES}
    soak_len = next((r.get("soak") for m in MODULES for r in soak_recs[m]), None)
    L.append(f"## s. Soak: {soak_len or '?'} s per load and reader count (TLS 1.3, RSA)")
    L.append("")
    m0 = machine.get("settings", "")
    st = dict(kv.split("=", 1) for kv in m0.split() if "=" in kv)
    L.append(f"new = {st.get('soak_new', '?')} clients each looping connect, full handshake, OPTIONS, 200, "
             f"close; persist = {st.get('soak_per', '?')} connections with {st.get('soak_win', '?')} pipelined "
             "OPTIONS each; mix = both at once. One kamailio instance per reader count (restarted after a "
             f"crash); each load runs {st.get('soak_warm', '?')} s first as a warm-up, then the figures below "
             "are taken over the load proper.")
    L.append("")
    L.append("| module | tcp_children | load | ran s | ok (cycles / requests) | errors | crashed | "
             "processes alive at end | shm in use before → after, no connections | back to baseline |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    SOAK_TOL = 64 * 1024

    def in_use(field, r):
        parts = (r.get(field) or "NA,NA,NA").split(",")
        used = num(parts[0])
        cached = num(parts[2]) if len(parts) > 2 else None
        if used is None:
            return None
        return used - cached if cached is not None else used

    soak_sum = {}
    for m in MODULES:
        name = "Debian" if m == "debian" else "ours"
        tot = soak_sum.setdefault(m, {"loads": 0, "errors": 0, "crashes": 0, "leaks": 0, "ops": 0})
        if not soak_recs[m]:
            L.append(f"| {name} | | not run | | | | | | | |")
            continue
        for r in soak_recs[m]:
            tot["loads"] += 1
            if r.get("status"):
                L.append(f"| {name} | {r.get('tc')} | {r.get('load')} | **{r.get('status')}** | | | | | | |")
                continue
            ok_new, ok_per = num(r.get("new_ok")), num(r.get("per_ok"))
            ops = []
            if r.get("load") != "persist":
                ops.append(fmt(ok_new) + " cycles" if ok_new is not None else "loadgen failed")
            if r.get("load") != "new":
                ops.append(fmt(ok_per) + " requests" if ok_per is not None else "loadgen failed")
            tot["ops"] += (ok_new or 0) + (ok_per or 0)
            kinds = {}
            for k, v in r.items():
                for pre in ("new_err_", "per_err_"):
                    if k.startswith(pre) and num(v):
                        kinds[k[len(pre):]] = kinds.get(k[len(pre):], 0) + int(num(v))
            nerr = sum(kinds.values())
            if any(r.get(p + "loadgen") == "failed" for p in ("new_", "per_")):
                kinds["loadgen failed"] = 1
            tot["errors"] += nerr
            errs = ", ".join(f"{k} {fmt(v)}" for k, v in sorted(kinds.items())) or "0"
            if r.get("crashed") == "yes":
                tot["crashes"] += 1
                when = r.get("crash_at")
                ph = " (in the warm-up)" if r.get("crash_phase") == "warmup" else ""
                crashed = f"**yes**, after {when} s{ph}" if when not in (None, "none") else "**yes**"
            else:
                crashed = "no"
            if r.get("bug_lines", "0") != "0":
                crashed += f", {r.get('bug_lines')} BUG line{'' if r.get('bug_lines') == '1' else 's'}"
            procs = f"{r.get('procs_after', '?')} of {r.get('procs_before', '?')}"
            b, a = in_use("shm_before", r), in_use("shm_after", r)
            if b is None or a is None:
                shm_s, back = "n/a", "n/a"
            else:
                d = a - b
                shm_s = f"{fmt(b / 1024)} → {fmt(a / 1024)} KB ({'+' if d >= 0 else '−'}{fmt(abs(d) / 1024, 1)} KB)"
                if d <= SOAK_TOL:
                    back = "yes"
                else:
                    back = "**no**"
                    tot["leaks"] += 1
            ran = r.get("ran", "?") + (" (warm-up)" if r.get("crash_phase") == "warmup" else "")
            L.append(f"| {name} | {r.get('tc')} | {r.get('load')} | {ran} | {' / '.join(ops)} | "
                     f"{'**' + errs + '**' if nerr else errs} | {crashed} | {procs} | {shm_s} | {back} |")
    L.append("")
    for m in MODULES:
        t = soak_sum.get(m)
        if t and t["loads"]:
            L.append(f"- {'Debian' if m == 'debian' else 'ours'}: {t['loads']} loads, {fmt(t['ops'])} operations "
                     f"completed, {fmt(t['errors'])} client-side errors, {t['crashes']} crashed, "
                     f"{t['leaks']} not back to the baseline.")
    L.append("")
    L.append("ran = seconds of the load proper (less if kamailio died and the load was stopped; "
             "\"(warm-up)\": it died in the warm-up, and the row shows the warm-up). "
             "Errors by kind as loadgen counts them (connect, handshake, write, read, timeout, status). "
             "Processes: kamailio's processes (main and children) at the end of the load, of those at its "
             "start; 0 when the main process is gone. shm in use = `core.shmmem` used minus, for our "
             "module, what it holds for reuse (`tls.info` shm_cached: per-process block caches); read with "
             "no connection left (waiting for `core.tcp_info` to show none), after the warm-up and after "
             f"the load. Back to baseline: grown by at most {SOAK_TOL // 1024} KB, what one-time "
             "allocations of the core and OpenSSL amount to; a leak of one small block per connection or "
             "per request would add far more over a load of this length.")
    L.append("")

    # ---- details
    L.append("## All load cells")
    L.append("")
    L.append("| round | module | cell | tc | crashed (BUG lines) | ok | rate/s | server CPU s | errors (connect/hs/write/read/timeout/status) | "
             "close not answered | p50 / p99 ms | hs p50 / p99 ms | loadgen CPU s | negotiated |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in recs:
        if r.get("cell", "").startswith(("mem.", "stop.", "big.", "soak.")):
            continue
        if r.get("status") == "nostart":
            L.append(f"| {r.get('round')} | {r.get('module')} | {r.get('cell')} | {r.get('tc')} | "
                     "**did not start** | | | | | | | | | |")
            continue
        errs = "/".join(r.get(f"err_{k}", "?") for k in
                        ("connect", "handshake", "write", "read", "timeout", "status"))
        L.append(f"| {r.get('round')} | {r.get('module')} | {r.get('cell')} | {r.get('tc')} | "
                 f"{'**yes**' if r.get('crashed') == 'yes' else 'no'}"
                 f"{' (' + r.get('bug_lines') + ')' if r.get('bug_lines', '0') != '0' else ''} | {r.get('ok', '-')} | {r.get('rate', '-')} | "
                 f"{r.get('srv_cpu', '-')} | {errs} | {r.get('close_wait_timeouts', '-')} | "
                 f"{ms(r.get('lat_p50_ms'))} / {ms(r.get('lat_p99_ms'))} | "
                 f"{ms(r.get('hs_p50_ms'))} / {ms(r.get('hs_p99_ms'))} | {r.get('cpu', '-')} | "
                 f"{r.get('proto', '-')} {r.get('cipher', '')} {r.get('group', '')} |")
    L.append("")

    # ---- anomalies
    L.append("## Anomalies")
    L.append("")
    anomalies = []
    for m in MODULES:
        for r in stops.get(m, []):
            anomalies.append(f"- {m}: kamailio ended by signal {r.get('signal')} when stopped with SIGTERM "
                             f"(instance {r.get('cell')[5:]}, round {r.get('round')}, cert {r.get('cert')}, "
                             f"tcp_children {r.get('tc')})")
    for (m, c), ce in sorted(cells.items()):
        once = all(r.get("round") == "once" for r in ce.recs)
        if ce.crashed():
            anomalies.append(f"- {m} {c}: kamailio crashed" + ("" if once else
                             f" in {ce.crashed()} of {ce.rounds} rounds"))
        errs = int(ce.total("errors"))
        if errs:
            anomalies.append(f"- {m} {c}: {errs} client-side errors")
        bugs = int(ce.total("bug_lines"))
        if bugs:
            anomalies.append(f"- {m} {c}: {bugs} memory-allocator BUG lines in kamailio's log")
        qf = int(ce.total("queue_full_lines"))
        if qf:
            anomalies.append(f"- {m} {c}: kamailio's TCP main process logged {qf} \"send2child(): ... queue "
                             "full\" lines while the idle connections were set up (one reader; the core's "
                             "queue to it, not the module)")
        cw = int(ce.total("close_wait_timeouts"))
        if cw:
            anomalies.append(f"- {m} {c}: the server did not answer the client's close within the wait "
                             f"{cw} times")
    crashes = os.path.join(outdir, "crashes.txt")
    if os.path.exists(crashes) and os.path.getsize(crashes):
        with open(crashes, errors="replace") as f:
            text = f.read().strip()
        anomalies.append("\nLog lines (from bench/out/crashes.txt):\n\n```\n" + text + "\n```")
    errfile = os.path.join(outdir, "errors.txt")
    if os.path.exists(errfile) and os.path.getsize(errfile):
        with open(errfile, errors="replace") as f:
            text = f.read().strip()
        anomalies.append("\nFirst client-side error lines per cell (from bench/out/errors.txt):\n\n```\n"
                         + text + "\n```")
    L.extend(anomalies or ["none"])
    L.append("")
    L.append("† kamailio logged memory-allocator BUG lines during that cell (state possibly corrupted; "
             "the instance was restarted for the next cell).")
    L.append("")

    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write("\n".join(L) + "\n")

    chart(outdir, chart_hs, chart_mem)
    print("\n".join(L))


def chart(outdir, hs, mem):
    def v(x):
        return "?" if x is None else f"{x:.1f}"

    with open(os.path.join(outdir, "chart-hs.dat"), "w") as f:
        f.write("# cell debian ours ceiling\n")
        for label, d, o, c in hs:
            f.write(f"\"{label}\" {v(d)} {v(o)} {v(c)}\n")
    with open(os.path.join(outdir, "chart-mem.dat"), "w") as f:
        f.write("# module tls tcp\n")
        for m, t, p in mem:
            f.write(f"\"{'Debian' if m == 'debian' else 'ours'}\" {v(t)} {v(p)}\n")
    gp = f"""
set terminal pngcairo size 1400,600 font ",10"
set output "{os.path.join(outdir, 'chart.png')}"
set datafile missing "?"
set multiplot layout 1,2 title "kamailio 5.6.3 TLS: Debian's tls.so vs ours (medians of the rounds that did not crash; no bar = crashed every round)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key outside bottom center horizontal
set xtics nomirror scale 0
set title "Handshakes per server CPU-second (log scale; higher is better)"
set logscale y
set yrange [50:*]
plot "{os.path.join(outdir, 'chart-hs.dat')}" using 2:xtic(1) title "Debian", \\
     "" using 3 title "ours", \\
     "" using 4 title "OpenSSL ceiling (in memory)"
unset logscale y
set yrange [0:*]
set title "Shared memory per idle connection, bytes (lower is better)"
plot "{os.path.join(outdir, 'chart-mem.dat')}" using 2:xtic(1) title "TLS 1.3", \\
     "" using 3 title "plain TCP"
unset multiplot
"""
    with open(os.path.join(outdir, "chart.gp"), "w") as f:
        f.write(gp)
    try:
        subprocess.run(["gnuplot", os.path.join(outdir, "chart.gp")], check=True,
                       stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        print(f"report: no chart ({e})", file=sys.stderr)


if __name__ == "__main__":
    main()
