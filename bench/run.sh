#!/usr/bin/env bash
# bench/run.sh: Debian's TLS module against ours, on the same kamailio binary,
# the same certificates and the same configuration (issue 6).
#
#   bash bench/run.sh            full run (~33 min: two rounds of a-e if time
#                                allows, ~11 min, then g and s, ~22 min)
#   BENCH_QUICK=1 bash bench/run.sh   smoke run (~6 min, one round)
#   BENCH_ONLY=gs bash bench/run.sh   only scenarios g and s
#
# The rounds (scenarios a to e) are followed by a phase run once per module:
# g (BENCH_BIG_N idle TLS connections at once) and s (the soak: minutes of
# load per reader count).
#
# Environment (all optional):
#   BENCH_QUICK=1        short durations, fewer idle connections, one round
#   BENCH_ROUNDS=N       rounds (Debian's then ours, per round); default 2 (1 if quick)
#   BENCH_BUDGET=SEC     no new round is started past this (default 660; quick 300)
#   BENCH_DUR=SEC        seconds per load cell (default 8; quick 2)
#   BENCH_IDLE_N=N       idle connections for the memory test (default 2000; quick 300)
#   BENCH_OURS=PATH      our tls.so (default: the repo's top tls.so)
#   BENCH_DEBIAN=PATH    Debian's tls.so
#   BENCH_KAMAILIO=PATH  the kamailio binary (default /usr/sbin/kamailio)
#   BENCH_PORT=N         first of 3 ports (TLS, TCP, UDP); default: first free from 25060
#   BENCH_ONLY=LIST      only these scenarios (a,b,c,d,e,g,s); default all
#   BENCH_BIG_N=N        g: idle TLS connections held at once (default 50000; quick 3000)
#   BENCH_BIG_DEBIAN_N=N g: the same with Debian's module (default 10000; quick 1000;
#                        0 skips it)
#   BENCH_BIG_SHM=MB     g: kamailio's shared memory for that instance (default 4096)
#   BENCH_SOAK=SEC       s: seconds per load and reader count (default 60; quick 5;
#                        0 skips the soak)
#   BENCH_CORES=1        let kamailio dump core (files go to out/logs/*.core)
#
# Results: bench/out/results.md, bench/out/chart.png, bench/out/raw.txt (one
# key=value line per cell), logs under bench/out/logs/.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
out=$here/out
bin=$out/bin
certs=$out/certs
logs=$out/logs
rundir=$out/run

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	DUR=${BENCH_DUR:-2}; IDLE_N=${BENCH_IDLE_N:-300}; ROUNDS=${BENCH_ROUNDS:-1}
	BUDGET=${BENCH_BUDGET:-300}; CEIL_SECS=0.5
	BIG_N=${BENCH_BIG_N:-3000}; BIG_DEBIAN_N=${BENCH_BIG_DEBIAN_N:-1000}; SOAK=${BENCH_SOAK:-5}
else
	DUR=${BENCH_DUR:-8}; IDLE_N=${BENCH_IDLE_N:-2000}; ROUNDS=${BENCH_ROUNDS:-2}
	BUDGET=${BENCH_BUDGET:-660}; CEIL_SECS=2
	BIG_N=${BENCH_BIG_N:-50000}; BIG_DEBIAN_N=${BENCH_BIG_DEBIAN_N:-10000}; SOAK=${BENCH_SOAK:-60}
fi
BIG_SHM=${BENCH_BIG_SHM:-4096}
for v in BIG_N BIG_DEBIAN_N BIG_SHM SOAK; do
	case ${!v} in
	''|*[!0-9]*) echo "bench: BENCH_$v must be a whole number, not '${!v}'" >&2; exit 2 ;;
	esac
done
[ "$BIG_N" -le 500000 ] && [ "$BIG_DEBIAN_N" -le 500000 ] \
	|| { echo "bench: BENCH_BIG_N and BENCH_BIG_DEBIAN_N are at most 500000" >&2; exit 2; }
[ "$BIG_SHM" -ge 64 ] || { echo "bench: BENCH_BIG_SHM must be at least 64 (MB)" >&2; exit 2; }
OURS=${BENCH_OURS:-$top/tls.so}
DEBIAN=${BENCH_DEBIAN:-/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so}
KAMAILIO=${BENCH_KAMAILIO:-/usr/sbin/kamailio}
ONLY=${BENCH_ONLY:-abcdegs}
case $ONLY in
*[!abcdegs,\ ]*|'') echo "bench: BENCH_ONLY takes letters of abcdegs, not '$ONLY'" >&2; exit 2 ;;
esac
SHM_MB=1024
# kamailio's connection limits; scenario g raises them for its instance
KCONNS=8192
KFILES=16384
KEXTRA=""
# kamailio's core files include the touched part of its 1 GB shm: off unless asked
if [ "${BENCH_CORES:-0}" = 1 ]; then CORE_OFF=no; else CORE_OFF=yes; fi
PKG_MB=32
HS_CONC=10          # a: clients doing full handshakes
RES_CONC=10         # b: clients resuming
PER_CONC=4          # c: persistent connections
PER_WIN=16          # c: pipelined requests per connection
CONC_CLIENTS=20     # e: concurrent new TLS 1.3 clients
CONC_DUR=$(( DUR > 2 ? DUR + 2 : DUR ))   # e: ~10 s each in a full run
BIG_TC=1            # g: readers (Debian's module survives with one only)
BIG_RAMP=200        # g: setups (and last requests) in flight at once
BIG_SETUP=150       # g: longest setup phase, and longest last-request phase, s
BIG_PER_SRC=10000   # g: connections per source address at most
BIG_FD_RESERVE=512  # g: descriptors kamailio's TCP main process needs besides connections
SOAK_NEW=20         # s: clients opening new connections
SOAK_PER=8          # s: persistent connections (one per reader at 8 readers)
SOAK_WIN=16         # s: pipelined requests per persistent connection
SOAK_WARM=2         # s: seconds of the same load before the baseline is read
CLK_TCK=$(getconf CLK_TCK)
T_BEGIN=$(date +%s)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ---------------------------------------------------------------- prerequisites

[ -x "$KAMAILIO" ] || { echo "bench: no kamailio at $KAMAILIO" >&2; exit 1; }
command -v kamcmd >/dev/null || { echo "bench: kamcmd missing (package kamailio)" >&2; exit 1; }
[ -f "$DEBIAN" ] || { echo "bench: Debian's module $DEBIAN missing (apt-get install kamailio-tls-modules)" >&2; exit 1; }
if [ ! -f "$OURS" ]; then
	log "building our module"
	make -s -C "$top" >/dev/null || { echo "bench: cannot build $OURS" >&2; exit 1; }
fi
make -s -C "$here" >/dev/null || { echo "bench: cannot build the tools" >&2; exit 1; }
if ! command -v gnuplot >/dev/null; then
	log "installing gnuplot-nox for the chart"
	if [ "$(id -u)" = 0 ]; then
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox) >"$out/apt.log" 2>&1 \
			|| log "gnuplot-nox could not be installed: no chart (see out/apt.log)"
	else
		log "not root: cannot install gnuplot-nox; no chart"
	fi
fi

mkdir -p "$certs" "$logs" "$rundir" "$out/modules"
# our module is being rebuilt by others while the benchmark runs: every
# instance loads the same snapshot of it, taken now
cp -f "$OURS" "$out/modules/tls-ours.so" || { echo "bench: cannot copy $OURS" >&2; exit 1; }
OURS_SRC=$OURS
OURS=$out/modules/tls-ours.so
rm -f "$logs"/*
RAW=$out/raw.txt
: >"$RAW"
CRASHES=$out/crashes.txt
: >"$CRASHES"
ERRORS=$out/errors.txt
: >"$ERRORS"

# ---------------------------------------------------------------- certificates

make_certs() {
	[ -s "$certs/ca.pem" ] && [ -s "$certs/rsa-cert.pem" ] && [ -s "$certs/ecdsa-cert.pem" ] && return 0
	log "making certificates in $certs"
	(
		set -e
		cd "$certs"
		rm -f ./*.pem ./*.csr ./*.srl
		cat >leaf.cnf <<-'EOF'
		[bench_leaf]
		basicConstraints=critical,CA:FALSE
		keyUsage=critical,digitalSignature,keyEncipherment
		extendedKeyUsage=serverAuth
		subjectAltName=DNS:localhost,IP:127.0.0.1
		EOF
		# one CA per key type, so each chain is all-RSA or all-ECDSA
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-rsa-key.pem -out ca-rsa.pem \
			-days 365 -subj /CN=bench-ca-rsa \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout ca-ecdsa-key.pem -out ca-ecdsa.pem -days 365 -subj /CN=bench-ca-ecdsa \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
		openssl req -newkey rsa:2048 -nodes -keyout rsa-key.pem -out rsa.csr -subj /CN=localhost
		openssl x509 -req -in rsa.csr -CA ca-rsa.pem -CAkey ca-rsa-key.pem -CAcreateserial \
			-days 365 -out rsa-cert.pem -extfile leaf.cnf -extensions bench_leaf
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ecdsa-key.pem \
			-out ecdsa.csr -subj /CN=localhost
		openssl x509 -req -in ecdsa.csr -CA ca-ecdsa.pem -CAkey ca-ecdsa-key.pem -CAcreateserial \
			-days 365 -out ecdsa-cert.pem -extfile leaf.cnf -extensions bench_leaf
		cat ca-rsa.pem ca-ecdsa.pem >ca.pem
		openssl verify -CAfile ca.pem rsa-cert.pem ecdsa-cert.pem
	) >"$logs/certs.txt" 2>&1 || { echo "bench: certificate generation failed (see $logs/certs.txt)" >&2; exit 1; }
}
make_certs

# ---------------------------------------------------------------- ports

port_free() {
	! ss -Htan "sport = :$1" 2>/dev/null | grep -q . && ! ss -Huan "sport = :$1" 2>/dev/null | grep -q .
}
if [ -n "${BENCH_PORT:-}" ]; then
	PORT=$BENCH_PORT
else
	PORT=25060
	while ! { port_free "$PORT" && port_free $((PORT + 1)) && port_free $((PORT + 2)); }; do
		PORT=$((PORT + 10))
		[ "$PORT" -lt 26000 ] || { echo "bench: no free ports" >&2; exit 1; }
	done
fi
TLS_PORT=$PORT; TCP_PORT=$((PORT + 1)); UDP_PORT=$((PORT + 2))
CTL=$rundir/ctl.sock

# ---------------------------------------------------------------- kamailio

WPID=""; KPID=""; KSPEC=""; KLOG=""; INST=0; CRASHED=no; BUGS=0
MODNAME=""; MODPATH=""; ROUND=0

write_cfg() { # cert tc
	cat >"$rundir/kamailio.cfg" <<-EOF
	#!KAMAILIO
	# written by bench/run.sh: the same for both modules but the loadmodule line
	debug=1
	log_stderror=yes
	children=2
	tcp_children=$2
	auto_aliases=no
	disable_core_dump=$CORE_OFF
	enable_tls=yes
	tcp_max_connections=$KCONNS
	tls_max_connections=$KCONNS
	tcp_connection_lifetime=3600
	open_files_limit=$KFILES
	listen=udp:127.0.0.1:$UDP_PORT
	listen=tcp:127.0.0.1:$TCP_PORT
	listen=tls:127.0.0.1:$TLS_PORT
	mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
	loadmodule "$MODPATH"
	loadmodule "sl.so"
	loadmodule "ctl.so"
	modparam("ctl", "binrpc", "unix:$CTL")
	modparam("tls", "certificate", "$certs/$1-cert.pem")
	modparam("tls", "private_key", "$certs/$1-key.pem")
	modparam("tls", "ca_list", "$certs/ca.pem")
	modparam("tls", "tls_method", "TLSv1.2+")
	modparam("tls", "verify_certificate", 0)
	modparam("tls", "require_certificate", 0)
	$KEXTRA
	request_route {
		if (method == "OPTIONS") {
			sl_send_reply("200", "OK");
			exit;
		}
		sl_send_reply("404", "Not Here");
	}
	EOF
}

kcmd() { timeout 5 kamcmd -s "unix:$CTL" "$@"; }

kam_alive() {
	[ -n "$KPID" ] && [ -r "/proc/$KPID/stat" ] || return 1
	local st
	st=$(sed -e 's/^.*) //' "/proc/$KPID/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# kamailio runs under a small wrapper shell in a session of its own
# (setsid): the wrapper records kamailio's pid and, when it ends, its exit
# status, so a crash at shutdown is seen too.  WPID is the wrapper (and the
# process group), KPID kamailio's main process.
kam_stop() { # [quiet]: do not record a crash at stop (already recorded)
	[ -n "$WPID" ] || return 0
	if [ -n "$KPID" ]; then
		kill -TERM "$KPID" 2>/dev/null
		local i
		for i in $(seq 1 50); do kam_alive || break; sleep 0.1; done
	fi
	# that process group, and only it, gets a KILL if anything of it is left
	if kill -0 -- "-$WPID" 2>/dev/null; then
		sleep 0.5
		kill -KILL -- "-$WPID" 2>/dev/null
	fi
	wait "$WPID" 2>/dev/null
	local st
	st=$(cat "$rundir/kam.status" 2>/dev/null)
	if [ -z "${1:-}" ] && [ -n "$st" ] && [ "$st" -ge 128 ]; then
		# died by a signal after SIGTERM: a crash at shutdown
		{ echo "### round $ROUND, $MODNAME, $(basename "$KLOG"): kamailio ended by signal $((st - 128)) when stopped (exit status $st)"
		  tail -n 4 "$KLOG"; echo; } >>"$CRASHES"
		record "stop.$INST tc=${KSPEC#*/} cert=${KSPEC%/*} exit_status=$st signal=$((st - 128))"
	fi
	if [ -f "$rundir/core" ]; then mv -f "$rundir/core" "${KLOG%.log}.core"; fi
	WPID=""; KPID=""; KSPEC=""
	rm -f "$CTL" "$rundir/kam.pid" "$rundir/kam.status"
}

kam_start() { # cert tc
	kam_stop
	INST=$((INST + 1))
	KLOG=$logs/kam-r$ROUND-$MODNAME-$INST-$1-tc$2.log
	write_cfg "$1" "$2"
	cp "$rundir/kamailio.cfg" "${KLOG%.log}.cfg"
	rm -f "$CTL" "$rundir/kamailio.pid" "$rundir/kam.pid" "$rundir/kam.status"
	setsid bash -c '"$@" & echo $! >"$0.pid"; wait $!; echo $? >"$0.status"' "$rundir/kam" \
		"$KAMAILIO" -f "$rundir/kamailio.cfg" -DD -E -m "$SHM_MB" -M "$PKG_MB" \
		-P "$rundir/kamailio.pid" -w "$rundir" >"$KLOG" 2>&1 </dev/null &
	WPID=$!
	local i
	for i in $(seq 1 150); do
		[ -z "$KPID" ] && [ -s "$rundir/kam.pid" ] && KPID=$(cat "$rundir/kam.pid")
		if [ -n "$KPID" ] && ! kam_alive; then
			log "kamailio ($MODNAME, $1, tcp_children=$2) did not start; see $KLOG"
			{ echo "### round $ROUND, $MODNAME, $(basename "$KLOG"): kamailio did not start"
			  tail -n 6 "$KLOG"; echo; } >>"$CRASHES"
			kam_stop quiet
			return 1
		fi
		if [ -n "$KPID" ] && [ -S "$CTL" ] && kcmd core.uptime >/dev/null 2>&1 \
		   && ss -Htln "sport = :$TLS_PORT" | grep -q .; then
			KSPEC="$1/$2"
			sleep 0.3
			return 0
		fi
		sleep 0.1
	done
	log "kamailio ($MODNAME, $1, tcp_children=$2) not ready after 15 s; see $KLOG"
	kam_stop
	return 1
}

kam_ensure() { # cert tc
	if [ "$KSPEC" = "$1/$2" ] && kam_alive; then return 0; fi
	kam_start "$1" "$2"
}

# pids of kamailio: the main process and its children
kam_pids() {
	[ -n "$KPID" ] || return 0
	cat /proc/[0-9]*/stat 2>/dev/null | sed -e 's/^\([0-9]*\) (.*) /\1 /' |
		awk -v m="$KPID" '$1 == m || $3 == m { print $1 }'
}

# how many of kamailio's processes are running (not zombies)
kam_running() {
	local p n=0 st
	for p in $(kam_pids); do
		st=$(sed -e 's/^.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
		[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ] && n=$((n + 1))
	done
	echo "$n"
}

# CPU seconds (user+system) of all kamailio processes
srv_cpu() {
	[ -n "$KPID" ] || { echo 0; return; }
	cat /proc/[0-9]*/stat 2>/dev/null | sed -e 's/^\([0-9]*\) (.*) /\1 /' |
		awk -v m="$KPID" -v hz="$CLK_TCK" '$1 == m || $3 == m { s += $13 + $14 }
			END { printf "%.2f\n", s / hz }'
}

# busy CPU seconds of the whole machine
machine_busy() {
	awk -v hz="$CLK_TCK" '$1 == "cpu" { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# "used real_used" of shared memory, NA if it cannot be read
shm_used() {
	kcmd core.shmmem 2>/dev/null | awk '
		$1 == "used:" { u = $2 } $1 == "real_used:" { r = $2 }
		END { print (u == "" ? "NA" : u), (r == "" ? "NA" : r) }'
}

# a /proc/<pid>/$1 field $2 (in KB) summed over kamailio's processes
proc_sum_kb() {
	local p s=0 v
	for p in $(kam_pids); do
		v=$(awk -v f="$2" '$1 == f { print $2 }' "/proc/$p/$1" 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

# proportional set size (KB) summed over kamailio's processes
pss_kb() { proc_sum_kb smaps_rollup Pss:; }

# lines of the log since byte offset $1 that tell of trouble
crash_lines() {
	tail -c +"$(($1 + 1))" "$KLOG" 2>/dev/null |
		grep -a -i -E 'exited by a signal|core was generated|signal 11|segmentation|core dumped|freeing already freed|BUG|abort|CRITICAL|ALERT|double free|corrupt' |
		grep -a -v 'queue full' | head -n 12
}

# the core's "send2child(): ... queue full" lines since byte offset $1 (a busy
# single reader, not a fault of the module): counted, not listed
queue_full_count() {
	tail -c +"$(($1 + 1))" "$KLOG" 2>/dev/null | grep -a -c 'queue full'
}

# how many memory-allocator BUG lines the log has since byte offset $1
bug_count() {
	tail -c +"$(($1 + 1))" "$KLOG" 2>/dev/null | grep -a -c 'BUG'
}

# did a kamailio process die of a signal since byte offset $1?
child_died() {
	tail -c +"$(($1 + 1))" "$KLOG" 2>/dev/null | grep -a -q -E 'exited by a signal|core was generated'
}

sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

record() { # cell key=value...
	echo "round=$ROUND module=$MODNAME cell=$*" >>"$RAW"
}

# after a cell: did kamailio survive?  Sets CRASHED=yes|no and BUGS (count
# of allocator BUG lines).  Not run in a subshell: it stops a dead or
# corrupted instance, so that the next cell gets a fresh one.
check_crash() { # cell log_offset
	local lines
	lines=$(crash_lines "$2")
	BUGS=$(bug_count "$2")
	CRASHED=no
	if kam_alive && ! child_died "$2"; then
		if [ -n "$lines" ]; then
			{ echo "### round $ROUND, $MODNAME, cell $1: kamailio still running, but its log says:"
			  echo "$lines"; echo; } >>"$CRASHES"
		fi
		if [ "$BUGS" -gt 0 ]; then
			log "  $MODNAME $1: $BUGS memory BUG lines in the log: restarting kamailio for the next cell"
			kam_stop
		fi
		return
	fi
	CRASHED=yes
	{ echo "### round $ROUND, $MODNAME, cell $1: kamailio crashed ($(basename "$KLOG"))"
	  if [ -n "$lines" ]; then echo "$lines"; else tail -n 8 "$KLOG"; fi
	  echo; } >>"$CRASHES"
	kam_stop quiet
}

# the first loadgen error lines of a cell, for the report
keep_errors() { # cell loadgen_output
	if grep -q '^loadgen: ' "$2"; then
		{ echo "### round $ROUND, $MODNAME, cell $1"; grep '^loadgen: ' "$2" | head -n 8; echo; } >>"$ERRORS"
	fi
}

# one load cell: cell cert tc -- loadgen args
load_cell() {
	local cell=$1 cert=$2 tc=$3; shift 3
	local lg=$logs/r$ROUND-$MODNAME-$cell.txt
	if ! kam_ensure "$cert" "$tc"; then
		record "$cell tc=$tc cert=$cert status=nostart"
		return
	fi
	local off c0 m0 c1 m1 shm0 shm1 t0 t1
	off=$(stat -c %s "$KLOG")
	c0=$(srv_cpu); m0=$(machine_busy); shm0=$(shm_used)
	t0=$(date +%s.%N)
	timeout -k 5 $((DUR * 3 + 60)) "$bin/loadgen" -H 127.0.0.1 -q "$@" >"$lg" 2>&1
	t1=$(date +%s.%N)
	c1=$(srv_cpu); m1=$(machine_busy)
	shm1=$(shm_used)
	check_crash "$cell" "$off"
	local result
	result=$(grep -m1 '^RESULT ' "$lg" | cut -d' ' -f2-)
	[ -n "$result" ] || result="loadgen=failed"
	local srv lgcpu other
	srv=$(sub "$c1" "$c0")
	lgcpu=$(echo "$result" | tr ' ' '\n' | awk -F= '$1 == "cpu" { print $2 }')
	other=$(awk -v b="$(sub "$m1" "$m0")" -v s="$srv" -v l="${lgcpu:-0}" 'BEGIN { o = b - s - l; printf "%.2f", o < 0 ? 0 : o }')
	keep_errors "$cell" "$lg"
	record "$cell tc=$tc cert=$cert crashed=$CRASHED bug_lines=$BUGS srv_cpu=$srv other_cpu=$other wall=$(sub "$t1" "$t0") shm_before=${shm0// /,} shm_after=${shm1// /,} $result"
	log "  $MODNAME $cell: $(echo "$result" | tr ' ' '\n' | grep -E '^(ok|rate|resumed|errors)=' | tr '\n' ' ')server_cpu=${srv}s crashed=$CRASHED bug_lines=$BUGS"
}

# memory per idle connection: cell plain(0/1)
mem_cell() {
	local cell=$1 plain=$2
	local lg=$logs/r$ROUND-$MODNAME-$cell.txt
	if ! kam_ensure rsa 1; then
		record "$cell tc=1 cert=rsa status=nostart"
		return
	fi
	local args=(-H 127.0.0.1 -m idle -c "$IDLE_N" -d 120 --ramp 50 --timeout 10000 -q)
	if [ "$plain" = 1 ]; then args+=(--plain -p "$TCP_PORT"); else args+=(-V 1.3 -A "$certs/ca.pem" -p "$TLS_PORT"); fi
	local off shm0 shm1 pss0 pss1 mstat0 mstat1
	off=$(stat -c %s "$KLOG")
	sleep 1
	shm0=$(shm_used); pss0=$(pss_kb)
	kcmd mod.stats all shm >"$logs/r$ROUND-$MODNAME-$cell-modstats-before.txt" 2>&1
	"$bin/loadgen" --label "$cell" "${args[@]}" >"$lg" 2>&1 &
	local lpid=$! i up=0
	for i in $(seq 1 1800); do   # at most 180 s for the setup
		if grep -q '^ALL_UP' "$lg" 2>/dev/null; then up=1; break; fi
		kill -0 "$lpid" 2>/dev/null || break
		sleep 0.1
	done
	sleep 1   # let the server settle
	if kam_alive; then
		shm1=$(shm_used); pss1=$(pss_kb)
		kcmd mod.stats all shm >"$logs/r$ROUND-$MODNAME-$cell-modstats-after.txt" 2>&1
	else
		shm1="NA NA"; pss1=NA
	fi
	kill -USR1 "$lpid" 2>/dev/null
	for i in $(seq 1 300); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$lpid" 2>/dev/null; then kill -KILL "$lpid" 2>/dev/null; fi
	wait "$lpid" 2>/dev/null
	local result allup qfull
	qfull=$(queue_full_count "$off")
	check_crash "$cell" "$off"
	result=$(grep -m1 '^RESULT ' "$lg" | cut -d' ' -f2-)
	[ -n "$result" ] || result="loadgen=failed"
	allup=$(grep -m1 '^ALL_UP' "$lg" | cut -d' ' -f2- | sed -e 's/up=/idle_up=/; s/failed=/idle_failed=/; s/pending=/idle_pending=/; s/secs=/idle_setup_secs=/')
	keep_errors "$cell" "$lg"
	record "$cell tc=1 cert=rsa crashed=$CRASHED bug_lines=$BUGS queue_full_lines=$qfull all_up=$up idle_n=$IDLE_N shm_before=${shm0// /,} shm_after=${shm1// /,} pss_before=$pss0 pss_after=$pss1 $allup $result"
	log "  $MODNAME $cell: shm ${shm0} -> ${shm1} (used real_used), $allup, final $(echo "$result" | tr ' ' '\n' | grep -E '^(ok|errors)=' | tr '\n' ' ')crashed=$CRASHED"
}

# resident set size (KB) summed over kamailio's processes; the shared memory
# a process touched counts in each such process (Pss shares it out)
rss_kb() { proc_sum_kb status VmRSS:; }

# connections kamailio holds (core.tcp_info): "all,tls", NA,NA if unknown
tcp_open() {
	kcmd core.tcp_info 2>/dev/null | awk '
		$1 == "opened_connections:" { a = $2 } $1 == "opened_tls_connections:" { t = $2 }
		END { print (a == "" ? "NA" : a) "," (t == "" ? "NA" : t) }'
}

# g. many idle TLS connections held by one kamailio: cell n
# Each connection: TLS 1.3, RSA certificate; one full handshake, the others
# resume the newest ticket (loadgen --share-session), one OPTIONS; held; then
# one last OPTIONS each and close.  The instance gets the limits n needs.
big_cell() {
	local cell=$1 n=$2
	local lg=$logs/$MODNAME-$cell.txt
	# descriptors: the TCP main process holds one per connection (a reader
	# one per connection it is serving), loadgen one per connection.  Both
	# raise their soft limit; the hard limit only goes up with
	# CAP_SYS_RESOURCE (root, usually), up to fs.nr_open.  Without it, the
	# hard limit caps what one kamailio can hold, and the cell says so.
	local asked=$n files=$(( 2 * n + 8192 )) hard nr_open capped=no
	nr_open=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)
	[ "$files" -le "$nr_open" ] || files=$nr_open
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt "$files" ]; then
		if ( ulimit -Hn "$files" ) 2>/dev/null; then
			hard=$files
		else
			files=$hard
			if [ "$n" -gt $(( hard - BIG_FD_RESERVE )) ]; then
				n=$(( hard - BIG_FD_RESERVE ))
				capped=yes
				log "  $MODNAME $cell: the open-file hard limit is $hard and cannot be raised here (no CAP_SYS_RESOURCE): $n connections instead of $asked"
			fi
		fi
	fi
	if [ "$n" -lt 1 ]; then
		record "$cell tc=$BIG_TC cert=rsa status=nofiles big_n_asked=$asked fd_hard=$hard"
		return
	fi
	# one destination allows about one ephemeral port range of connections
	# per source address: spread them over 127.0.0.2, .3, ..., one address
	# per BIG_PER_SRC connections at most
	local plo phi per nsrc
	read -r plo phi </proc/sys/net/ipv4/ip_local_port_range
	per=$(( (phi - plo + 1) * 9 / 10 ))
	[ "$per" -le "$BIG_PER_SRC" ] || per=$BIG_PER_SRC
	if [ "$per" -lt 100 ]; then
		log "  $MODNAME $cell: ip_local_port_range $plo-$phi is too narrow"
		record "$cell tc=$BIG_TC cert=rsa status=noports big_n_asked=$asked"
		return
	fi
	nsrc=$(( (n + per - 1) / per ))
	[ "$nsrc" -le 250 ] || nsrc=250
	local src="127.0.0.2-127.0.0.$((1 + nsrc))"
	kam_stop
	local save_shm=$SHM_MB save_conns=$KCONNS save_files=$KFILES started=0
	SHM_MB=$BIG_SHM; KCONNS=$((n + 2048)); KFILES=$files
	# connection_timeout: our default (600 s) is longer than the cell, but
	# the cell must not depend on it
	KEXTRA='modparam("tls", "connection_timeout", 3600)'
	kam_start rsa "$BIG_TC" && started=1
	SHM_MB=$save_shm; KCONNS=$save_conns; KFILES=$save_files; KEXTRA=""
	if [ "$started" != 1 ]; then
		record "$cell tc=$BIG_TC cert=rsa status=nostart big_n=$n big_n_asked=$asked fd_hard=$hard shm_mb=$BIG_SHM"
		return
	fi
	local off shm0 shm1 pss0 pss1 rss0 rss1 c0 c1 open1 t0 trel tend
	off=$(stat -c %s "$KLOG")
	sleep 1
	shm0=$(shm_used); pss0=$(pss_kb); rss0=$(rss_kb); c0=$(srv_cpu)
	kcmd mod.stats all shm >"$logs/$MODNAME-$cell-modstats-before.txt" 2>&1
	local args=(-H 127.0.0.1 -p "$TLS_PORT" -A "$certs/ca.pem" -V 1.3 -m idle -c "$n" -d 600
		--ramp "$BIG_RAMP" --timeout 20000 --setup-timeout "$BIG_SETUP" --share-session
		--src "$src" -q)
	log "  $MODNAME $cell: $n connections from $src (shm ${BIG_SHM} MB, open_files_limit $files)"
	t0=$(date +%s.%N)
	"$bin/loadgen" --label "$cell" "${args[@]}" >"$lg" 2>&1 &
	local lpid=$! i up=0
	for i in $(seq 1 $(( (BIG_SETUP + 20) * 10 ))); do
		if grep -q '^ALL_UP' "$lg" 2>/dev/null; then up=1; break; fi
		kill -0 "$lpid" 2>/dev/null || break
		sleep 0.1
	done
	c1=$(srv_cpu)
	sleep 2   # let the server settle
	if kam_alive; then
		shm1=$(shm_used); pss1=$(pss_kb); rss1=$(rss_kb); open1=$(tcp_open)
		kcmd mod.stats all shm >"$logs/$MODNAME-$cell-modstats-after.txt" 2>&1
	else
		shm1="NA NA"; pss1=NA; rss1=NA; open1=NA,NA
	fi
	trel=$(date +%s.%N)
	kill -USR1 "$lpid" 2>/dev/null
	# the last requests are ramped like the setups
	for i in $(seq 1 $(( (BIG_SETUP + 30) * 10 ))); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$lpid" 2>/dev/null; then kill -KILL "$lpid" 2>/dev/null; fi
	wait "$lpid" 2>/dev/null
	tend=$(date +%s.%N)
	local result allup qfull
	qfull=$(queue_full_count "$off")
	check_crash "$cell" "$off"
	result=$(grep -m1 '^RESULT ' "$lg" | cut -d' ' -f2-)
	[ -n "$result" ] || result="loadgen=failed"
	allup=$(grep -m1 '^ALL_UP' "$lg" | cut -d' ' -f2- | sed -e 's/up=/idle_up=/; s/failed=/idle_failed=/; s/pending=/idle_pending=/; s/secs=/idle_setup_secs=/')
	keep_errors "$cell" "$lg"
	record "$cell tc=$BIG_TC cert=rsa crashed=$CRASHED bug_lines=$BUGS queue_full_lines=$qfull all_up=$up big_n=$n big_n_asked=$asked fd_capped=$capped fd_hard=$hard src=$src shm_mb=$BIG_SHM open_files=$files shm_before=${shm0// /,} shm_after=${shm1// /,} pss_before=$pss0 pss_after=$pss1 rss_before=$rss0 rss_after=$rss1 srv_cpu_setup=$(sub "$c1" "$c0") tcp_open_after=$open1 final_secs=$(sub "$tend" "$trel") cell_secs=$(sub "$tend" "$t0") $allup $result"
	log "  $MODNAME $cell: shm ${shm0} -> ${shm1} (used real_used), kamailio holds $open1 (all,tls), $allup, last OPTIONS $(echo "$result" | tr ' ' '\n' | grep -E '^(ok|errors|resumed)=' | tr '\n' ' ')crashed=$CRASHED"
	kam_stop
}

# s. soak: minutes of load per reader count

# wait until kamailio holds no connection (at most 20 s), then its shm
# ("used real_used"; NA NA if it is not running)
shm_settled() {
	local i o
	for i in $(seq 1 40); do
		kam_alive || break
		o=$(tcp_open)
		[ "${o%%,*}" = 0 ] && break
		sleep 0.5
	done
	sleep 0.5
	if kam_alive; then echo "$(shm_used) $(shm_cached)"; else echo "NA NA NA"; fi
}

# our module's tls.info shm_cached: shared memory it holds for reuse (its
# per-process block caches); NA where the module has no such figure
shm_cached() {
	kcmd tls.info 2>/dev/null | awk '$1 == "shm_cached:" { v = $2 } END { print (v == "" ? "NA" : v) }'
}

# the figures of one loadgen's RESULT line, each key with a prefix
soak_result() { # file prefix
	local r
	r=$(grep -m1 '^RESULT ' "$1" 2>/dev/null | cut -d' ' -f2-)
	if [ -z "$r" ]; then echo "${2}loadgen=failed"; return; fi
	echo "$r" | tr ' ' '\n' |
		grep -E '^(ok|rate|span|elapsed|handshakes|resumed|requests|errors|err_[a-z]+|close_wait_timeouts|lat_p50_ms|lat_p99_ms|stopped_by_signal|cpu)=' |
		sed -e "s/^/$2/" | tr '\n' ' '
}

# start the loadgens of a load for $3 seconds (outputs $logs/$MODNAME-$1-$4-{new,persist}.txt)
# and watch kamailio every 0.5 s: if it dies, SOAK_CRASH_AT is set (seconds
# since $5) and the load is stopped.  Log offset for child deaths: $6.
SOAK_CRASH_AT=""
soak_load() { # cell load secs tag t0 log_offset
	local cell=$1 load=$2 secs=$3 tag=$4 t0=$5 off=$6 p running lp=()
	local tlsargs=(-H 127.0.0.1 -p "$TLS_PORT" -A "$certs/ca.pem" -V 1.3 -q --label "$cell")
	local lgn=$logs/$MODNAME-$cell-$tag-new.txt lgp=$logs/$MODNAME-$cell-$tag-persist.txt
	rm -f "$lgn" "$lgp"
	SOAK_CRASH_AT=""
	if [ "$load" != persist ]; then
		timeout -k 5 $((secs + 60)) "$bin/loadgen" "${tlsargs[@]}" -m new -c "$SOAK_NEW" \
			-d "$secs" >"$lgn" 2>&1 &
		lp+=($!)
	fi
	if [ "$load" != new ]; then
		timeout -k 5 $((secs + 60)) "$bin/loadgen" "${tlsargs[@]}" -m persist -c "$SOAK_PER" \
			-w "$SOAK_WIN" -d "$secs" >"$lgp" 2>&1 &
		lp+=($!)
	fi
	while :; do
		running=0
		for p in "${lp[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
		[ "$running" = 1 ] || break
		if [ -z "$SOAK_CRASH_AT" ] && { ! kam_alive || child_died "$off"; }; then
			SOAK_CRASH_AT=$(sub "$(date +%s.%N)" "$t0")
			log "  $MODNAME $cell: kamailio died ${SOAK_CRASH_AT} s into the load ($tag): stopping it"
			for p in "${lp[@]}"; do kill -INT "$p" 2>/dev/null; done
		fi
		sleep 0.5
	done
	wait "${lp[@]}" 2>/dev/null
	if [ -z "$SOAK_CRASH_AT" ] && { ! kam_alive || child_died "$off"; }; then
		SOAK_CRASH_AT=$(sub "$(date +%s.%N)" "$t0")
	fi
	[ -f "$lgn" ] && keep_errors "$cell.$tag.new" "$lgn"
	[ -f "$lgp" ] && keep_errors "$cell.$tag.persist" "$lgp"
	SOAK_RES=""
	[ "$load" != persist ] && SOAK_RES+="$(soak_result "$lgn" new_)"
	[ "$load" != new ] && SOAK_RES+="$(soak_result "$lgp" per_)"
	return 0
}

# one load on the instance of tc readers: new (SOAK_NEW clients, each
# looping connect / full handshake / OPTIONS / close), persist (SOAK_PER
# connections, SOAK_WIN pipelined OPTIONS each) or mix (both loadgens at
# once).  The same load runs SOAK_WARM seconds first: what the module and
# the core allocate once (per-process caches, first-use structures) goes
# into the baseline, read once all connections are gone; the load then runs
# SOAK seconds and the shared memory, again without connections, is
# compared with that baseline.
soak_cell() { # tc load
	local tc=$1 load=$2 cell="soak.tc$1.$2"
	if ! kam_ensure rsa "$tc"; then
		record "$cell tc=$tc cert=rsa load=$load soak=$SOAK status=nostart"
		return
	fi
	local off shm0 shm1 np0 np1 c0 c1 t0 t1 tw
	np0=$(kam_running)
	off=$(stat -c %s "$KLOG")
	tw=$(date +%s.%N)
	soak_load "$cell" "$load" "$SOAK_WARM" warmup "$tw" "$off"
	if [ -n "$SOAK_CRASH_AT" ]; then
		np1=$(kam_running)
		check_crash "$cell" "$off"
		record "$cell tc=$tc cert=rsa load=$load soak=$SOAK crashed=$CRASHED crash_at=$SOAK_CRASH_AT crash_phase=warmup bug_lines=$BUGS ran=$(sub "$(date +%s.%N)" "$tw") procs_before=$np0 procs_after=$np1 shm_before=NA,NA,NA shm_after=NA,NA,NA $SOAK_RES"
		log "  $MODNAME $cell: died in the ${SOAK_WARM}-s warm-up, after $SOAK_CRASH_AT s"
		return
	fi
	shm0=$(shm_settled)
	c0=$(srv_cpu)
	t0=$(date +%s.%N)
	soak_load "$cell" "$load" "$SOAK" main "$t0" "$off"
	t1=$(date +%s.%N)
	np1=$(kam_running)
	c1=$(srv_cpu)
	shm1=$(shm_settled)
	check_crash "$cell" "$off"
	record "$cell tc=$tc cert=rsa load=$load soak=$SOAK crashed=$CRASHED crash_at=${SOAK_CRASH_AT:-none} crash_phase=$([ -n "$SOAK_CRASH_AT" ] && echo load || echo none) bug_lines=$BUGS ran=$(sub "$t1" "$t0") srv_cpu=$(sub "$c1" "$c0") procs_before=$np0 procs_after=$np1 shm_before=${shm0// /,} shm_after=${shm1// /,} $SOAK_RES"
	log "  $MODNAME $cell: ran $(sub "$t1" "$t0") s, $(echo "$SOAK_RES" | tr ' ' '\n' | grep -E '^(new|per)_(ok|errors)=' | tr '\n' ' ')processes $np0 -> $np1, shm used ${shm0%% *} -> ${shm1%% *} (module cache ${shm0##* } -> ${shm1##* }), crashed=$CRASHED${SOAK_CRASH_AT:+ at $SOAK_CRASH_AT s}"
}

soak_module() {
	local tc load
	for tc in 1 2 4 8; do
		kam_stop
		for load in new persist mix; do
			soak_cell "$tc" "$load"
		done
	done
	kam_stop
}

# ---------------------------------------------------------------- scenarios

run_module() {
	local tlsargs=(-A "$certs/ca.pem" -p "$TLS_PORT")
	log "round $ROUND: $MODNAME ($MODPATH)"
	if [[ $ONLY == *a* ]]; then
		# a. full handshakes, one reader
		local cert v
		for cert in rsa ecdsa; do
			for v in 1.3 1.2; do
				load_cell "hs.$cert.$v" "$cert" 1 --label "hs.$cert.$v" -m new -c "$HS_CONC" \
					-d "$DUR" -V "$v" "${tlsargs[@]}"
			done
		done
		# the same cycle over plain TCP: what kamailio spends without TLS
		load_cell hs.tcp ecdsa 1 --label hs.tcp -m new -c "$HS_CONC" -d "$DUR" --plain -p "$TCP_PORT"
	fi
	if [[ $ONLY == *c* ]]; then
		# c. persistent connections, pipelined; TLS and plain TCP, 1 and 4 readers
		local tc
		for tc in 1 4; do
			load_cell "per.tls.tc$tc" ecdsa "$tc" --label "per.tls.tc$tc" -m persist -c "$PER_CONC" \
				-w "$PER_WIN" -d "$DUR" -V 1.3 "${tlsargs[@]}"
			load_cell "per.tcp.tc$tc" ecdsa "$tc" --label "per.tcp.tc$tc" -m persist -c "$PER_CONC" \
				-w "$PER_WIN" -d "$DUR" --plain -p "$TCP_PORT"
		done
	fi
	if [[ $ONLY == *b* ]]; then
		# b. resumption, four readers
		local v
		for v in 1.3 1.2; do
			load_cell "res.rsa.$v" rsa 4 --label "res.rsa.$v" -m resume -c "$RES_CONC" \
				-d "$DUR" -V "$v" "${tlsargs[@]}"
		done
	fi
	if [[ $ONLY == *d* ]]; then
		# d. memory per idle connection, on a fresh instance
		kam_stop
		mem_cell mem.tls 0
		mem_cell mem.tcp 1
	fi
	if [[ $ONLY == *e* ]]; then
		# e. concurrency: 20 new TLS 1.3 clients against 1, 2, 4, 8 readers
		kam_stop
		local tc
		for tc in 1 2 4 8; do
			load_cell "conc.tc$tc" rsa "$tc" --label "conc.tc$tc" -m new -c "$CONC_CLIENTS" \
				-d "$CONC_DUR" -V 1.3 "${tlsargs[@]}"
		done
	fi
	kam_stop
}

# g and s: once per module, after the rounds
run_once() {
	log "once per module: $MODNAME ($MODPATH)"
	if [[ $ONLY == *g* ]]; then
		local n=$BIG_N
		[ "$MODNAME" = debian ] && n=$BIG_DEBIAN_N
		if [ "$n" -gt 0 ]; then
			big_cell big.tls "$n"
		else
			record "big.tls tc=$BIG_TC cert=rsa status=skipped"
		fi
	fi
	if [[ $ONLY == *s* ]] && [ "$SOAK" -gt 0 ]; then
		soak_module
	fi
	kam_stop
}

cleanup() { kam_stop; }
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

log "ports tls=$TLS_PORT tcp=$TCP_PORT udp=$UDP_PORT; ${DUR}s per cell; idle N=$IDLE_N; rounds<=$ROUNDS; quick=$QUICK; only=$ONLY; big N=$BIG_N (Debian's $BIG_DEBIAN_N); soak ${SOAK}s"
{
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc=$(nproc)"
	echo "cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel=$(uname -r)"
	echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "kamailio=$("$KAMAILIO" -v 2>/dev/null | awk '/^version:/ { print $2, $3; exit }')"
	echo "openssl=$(openssl version)"
	echo "debian_module=$DEBIAN ($(dpkg-query -W -f='${Package} ${Version}' kamailio-tls-modules 2>/dev/null))"
	echo "our_module=$OURS_SRC, snapshot $(date -r "$OURS_SRC" -u +%H:%M:%SZ) sha256 $(sha256sum "$OURS" | cut -c1-12) (HEAD $(cd "$top" && git log -1 --format='%h %cs' 2>/dev/null)$(cd "$top" && git diff --quiet HEAD -- '*.c' '*.h' 2>/dev/null || echo ', uncommitted changes in the tree'))"
	echo "settings=quick=$QUICK rounds=$ROUNDS dur=$DUR idle_n=$IDLE_N hs_conc=$HS_CONC res_conc=$RES_CONC per_conc=$PER_CONC per_win=$PER_WIN conc_clients=$CONC_CLIENTS conc_dur=$CONC_DUR shm_mb=$SHM_MB only=$ONLY big_n=$BIG_N big_debian_n=$BIG_DEBIAN_N big_shm_mb=$BIG_SHM big_tc=$BIG_TC big_ramp=$BIG_RAMP soak=$SOAK soak_warm=$SOAK_WARM soak_new=$SOAK_NEW soak_per=$SOAK_PER soak_win=$SOAK_WIN"
	echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

# f. the in-memory ceiling (module independent; tables a and b use it)
: >"$out/ceiling.txt"
[[ $ONLY == *[ab]* ]] && log "OpenSSL ceiling (in memory, ${CEIL_SECS}s per cell)"
for cert in rsa ecdsa; do
	[[ $ONLY == *[ab]* ]] || break
	for v in 1.3 1.2; do
		for m in full resume; do
			extra=(); [ "$m" = resume ] && extra=(--resume)
			"$bin/hsceiling" --cert "$certs/$cert-cert.pem" --key "$certs/$cert-key.pem" \
				--ca "$certs/ca.pem" --tls "$v" -d "$CEIL_SECS" --label "$cert" "${extra[@]}" \
				>>"$out/ceiling.txt" 2>&1 || echo "RESULT label=$cert tls=$v mode=$m failed=1" >>"$out/ceiling.txt"
		done
	done
done
grep '^hsceiling' "$out/ceiling.txt" | sed -e 's/^/  /'

for ROUND in $(seq 1 "$ROUNDS"); do
	elapsed=$(( $(date +%s) - T_BEGIN ))
	if [ "$ROUND" -gt 1 ] && [ "$elapsed" -gt "$BUDGET" ]; then
		log "time budget used (${elapsed}s > ${BUDGET}s): no round $ROUND"
		break
	fi
	[[ $ONLY == *[abcde]* ]] || break
	MODNAME=debian; MODPATH=$DEBIAN; run_module
	MODNAME=ours; MODPATH=$OURS; run_module
done
if [[ $ONLY == *[gs]* ]]; then
	ROUND=once
	MODNAME=debian; MODPATH=$DEBIAN; run_once
	MODNAME=ours; MODPATH=$OURS; run_once
fi

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
echo "total_secs=$(( $(date +%s) - T_BEGIN ))" >>"$out/machine.txt"

# keep every run's data and results: out/history/<UTC start time>/
hist=$out/history/$(date -u -d "@$T_BEGIN" +%Y%m%dT%H%M%SZ)
mkdir -p "$hist" && cp -f "$out"/raw.txt "$out"/machine.txt "$out"/ceiling.txt \
	"$out"/crashes.txt "$out"/errors.txt "$hist"/ 2>/dev/null
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
"$PY" "$here/report.py" "$out" >/dev/null || { echo "bench: report failed" >&2; exit 1; }
cp -f "$out/results.md" "$hist"/
[ -f "$out/chart.png" ] && cp -f "$out/chart.png" "$hist"/
sed -n '/^## a\./,/^## All load cells/p' "$out/results.md" | sed '$d'
[ -s "$CRASHES" ] && log "kamailio trouble was logged: see the Anomalies section of $out/results.md"
log "done in $(( $(date +%s) - T_BEGIN ))s: $out/results.md, $out/chart.png"
