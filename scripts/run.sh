#!/usr/bin/env bash
# The module's main job: Kamailio in the foreground with this tls.so, SIP over
# TLS on 127.0.0.1:5061, a demo CA and server certificate made on first run
# (in demo/certs), OPTIONS answered 200. Ctrl-C stops it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
make -s
mkdir -p demo
if [ ! -s demo/certs/server-cert.pem ]; then
	bash scripts/tls-certs.sh -d demo/certs -n localhost -i 127.0.0.1 >/dev/null
	echo "run: demo CA and certificate made in demo/certs (trust demo/certs/ca.pem)"
fi
sed -e "s|@MODULE@|$top/tls.so|" -e "s|@RUNDIR@|$top/demo|" \
	examples/demo.cfg > demo/kamailio.cfg
echo "run: kamailio on tls:127.0.0.1:5061; try:"
echo "  openssl s_client -connect 127.0.0.1:5061 -CAfile demo/certs/ca.pem"
exec kamailio -f demo/kamailio.cfg -DD -E -m 64 -M 8 -w "$top/demo" -P "$top/demo/kamailio.pid"
