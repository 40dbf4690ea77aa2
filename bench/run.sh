#!/usr/bin/env bash
# bench/run.sh: Debian's TLS module against ours, on the same kamailio binary,
# the same certificates and the same configuration (issue 6).
#
#   bash bench/run.sh            full run (~11 min: two rounds if time allows)
#   BENCH_QUICK=1 bash bench/run.sh   smoke run (~2 min, one round)
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
#   BENCH_ONLY=LIST      only these scenarios (a,b,c,d,e); default all
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
else
	DUR=${BENCH_DUR:-8}; IDLE_N=${BENCH_IDLE_N:-2000}; ROUNDS=${BENCH_ROUNDS:-2}
	BUDGET=${BENCH_BUDGET:-660}; CEIL_SECS=2
fi
OURS=${BENCH_OURS:-$top/tls.so}
DEBIAN=${BENCH_DEBIAN:-/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so}
KAMAILIO=${BENCH_KAMAILIO:-/usr/sbin/kamailio}
ONLY=${BENCH_ONLY:-abcde}
SHM_MB=1024
# kamailio's core files include the touched part of its 1 GB shm: off unless asked
if [ "${BENCH_CORES:-0}" = 1 ]; then CORE_OFF=no; else CORE_OFF=yes; fi
PKG_MB=32
HS_CONC=10          # a: clients doing full handshakes
RES_CONC=10         # b: clients resuming
PER_CONC=4          # c: persistent connections
PER_WIN=16          # c: pipelined requests per connection
CONC_CLIENTS=20     # e: concurrent new TLS 1.3 clients
CONC_DUR=$(( DUR > 2 ? DUR + 2 : DUR ))   # e: ~10 s each in a full run
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
	tcp_max_connections=8192
	tls_max_connections=8192
	tcp_connection_lifetime=3600
	open_files_limit=16384
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

# proportional set size (KB) summed over kamailio's processes
pss_kb() {
	local p s=0 v
	for p in $(kam_pids); do
		v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

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

cleanup() { kam_stop; }
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

log "ports tls=$TLS_PORT tcp=$TCP_PORT udp=$UDP_PORT; ${DUR}s per cell; idle N=$IDLE_N; rounds<=$ROUNDS; quick=$QUICK"
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
	echo "settings=quick=$QUICK rounds=$ROUNDS dur=$DUR idle_n=$IDLE_N hs_conc=$HS_CONC res_conc=$RES_CONC per_conc=$PER_CONC per_win=$PER_WIN conc_clients=$CONC_CLIENTS conc_dur=$CONC_DUR shm_mb=$SHM_MB"
	echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

# f. the in-memory ceiling (module independent)
log "OpenSSL ceiling (in memory, ${CEIL_SECS}s per cell)"
: >"$out/ceiling.txt"
for cert in rsa ecdsa; do
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
	MODNAME=debian; MODPATH=$DEBIAN; run_module
	MODNAME=ours; MODPATH=$OURS; run_module
done

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
