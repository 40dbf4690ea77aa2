#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine (as root) and runs every
# test: Check unit tests, the integration suite (Debian's kamailio with the
# freshly built tls.so, driven by real TLS clients and servers), each fuzz
# target briefly (libFuzzer), and the integration suite again against an
# AddressSanitizer + UndefinedBehaviorSanitizer build of tls.so.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
make -s
status=0
make -s unit || status=1
make -s integration || status=1
make -s fuzz-short || status=1
make -s sanitize || status=1
exit $status
