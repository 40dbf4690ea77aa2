#!/usr/bin/env bash
# Builds tls.so with AddressSanitizer and UndefinedBehaviorSanitizer and runs
# the whole integration suite with it, under Debian's unchanged kamailio with
# the sanitizer runtimes preloaded.
#
#   bash scripts/sanitize.sh [-k SUBSTRING]     (also: make sanitize)
#
# - The module is built into build/san/ (the top Makefile's SAN_CFLAGS).
# - kamailio is started through a wrapper (build/san/kamailio) that preloads
#   gcc's libasan and libubsan and writes each process's reports into
#   <that kamailio's directory>/asan.<pid> / ubsan.<pid>. The integration
#   harness starts kamailio from harness.KAMAILIO; this script's driver points
#   it at the wrapper, nothing in the suite is changed.
# - Kamailio's own allocators are not instrumented and its processes exit
#   without freeing: leak detection is off (detect_leaks=0). Errors do not
#   abort (abort_on_error=0, halt_on_error=0 for UBSan), so one report does
#   not hide the next.
# - A test after which a sanitizer report appeared fails, with the report in
#   its output; every report is also copied to build/san/reports/.
# Ends with the suite's "N passed, N failed" line; exit status 0 only if
# every test passed and no sanitizer reported anything.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

san_dir=$top/build/san
reports=$san_dir/reports
san_flags="-fsanitize=address,undefined -fno-omit-frame-pointer"

libasan=$(gcc -print-file-name=libasan.so)
libubsan=$(gcc -print-file-name=libubsan.so)
for lib in "$libasan" "$libubsan"; do
	if [ ! -e "$lib" ]; then
		echo "sanitize: no $(basename "$lib") for gcc (apt-get install gcc)" >&2
		exit 2
	fi
done
# The real files (the .so names are linker scripts or symlinks).
libasan=$(readlink -f "$libasan")
libubsan=$(readlink -f "$libubsan")

echo "== building $san_dir/tls.so ($san_flags)"
make -s OBJDIR="$san_dir/obj" NAME="$san_dir/tls.so" SAN_CFLAGS="$san_flags"

# The wrapper: sanitizer runtimes first, reports beside the config file
# (harness: <case>/kamailioN/kamailio.cfg), then the real kamailio.
cat > "$san_dir/kamailio" <<EOF
#!/bin/sh
dir=.
prev=
for a in "\$@"; do
	[ "\$prev" = "-f" ] && dir=\$(dirname "\$a")
	prev=\$a
done
export LD_PRELOAD="$libasan $libubsan\${LD_PRELOAD:+ \$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:verify_asan_link_order=0:log_path=\$dir/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=\$dir/ubsan"
exec /usr/sbin/kamailio "\$@"
EOF
chmod 755 "$san_dir/kamailio"

rm -rf "$reports"
mkdir -p "$reports"
echo "== integration suite with $san_dir/tls.so under $san_dir/kamailio"
set +e
SAN_WRAPPER="$san_dir/kamailio" SAN_REPORTS="$reports" \
/usr/bin/python3 - --module "$san_dir/tls.so" "$@" <<'EOF' | tee "$san_dir/suite.log"
import glob
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.getcwd(), "test", "integration"))
sys.dont_write_bytecode = True
import harness  # noqa: E402
import run      # noqa: E402

harness.KAMAILIO = os.environ["SAN_WRAPPER"]
REPORTS = os.environ["SAN_REPORTS"]
plain_run_one = run.run_one


def reports_in(case_dirs):
    found = []
    for d in case_dirs:
        found += glob.glob(os.path.join(d, "**", "asan.*"), recursive=True)
        found += glob.glob(os.path.join(d, "**", "ubsan.*"), recursive=True)
    return sorted(found)


def run_one(session, function):
    before = set(glob.glob(os.path.join(session.run_dir, "t*")))
    outcome = plain_run_one(session, function)
    new = set(glob.glob(os.path.join(session.run_dir, "t*"))) - before
    found = reports_in(new)
    if not found:
        return outcome
    reason, excerpt = outcome or ("sanitizer reports", [])
    for path in found:
        rel = os.path.relpath(path, session.run_dir)
        keep = os.path.join(REPORTS, function.__name__ + "--"
                            + rel.replace(os.sep, "_"))
        shutil.copy(path, keep)
        excerpt.append("sanitizer report %s:" % keep)
        with open(path, errors="replace") as f:
            excerpt += ["  " + line.rstrip() for line in f.readlines()[:40]]
    if outcome is None:
        reason = "%d sanitizer report(s)" % len(found)
    return reason, excerpt


run.run_one = run_one
sys.argv[0] = "run.py"
sys.exit(run.main())
EOF
status=${PIPESTATUS[0]}
set -e

count=$(find "$reports" -type f | wc -l)
echo "== sanitizer reports: $count (in $reports)"
if [ "$count" -ne 0 ]; then
	status=1
	# One line per report: the kind of error, for the overview.
	for f in "$reports"/*; do
		printf '  %s: %s\n' "$(basename "$f")" \
			"$(grep -m1 -E 'ERROR: AddressSanitizer|runtime error' "$f" || echo '?')"
	done
fi
# The suite's closing line last (a test with a report counts as failed).
grep -E '^[0-9]+ passed, [0-9]+ failed' "$san_dir/suite.log" | tail -n 1
exit $status
