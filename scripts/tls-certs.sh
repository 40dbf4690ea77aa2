#!/usr/bin/env bash
# tls-certs.sh: makes a small CA and the certificates a TLS SIP server needs.
#
#   scripts/tls-certs.sh [-d DIR] [-n NAME]... [-i IP]... [-c CLIENT]...
#                        [-s BASE] [--rsa [BITS]] [--days N] [--force]
#
#   -d DIR      where to write (default ./tls-certs)
#   -n NAME     server name: a DNS subjectAltName and a sip:NAME URI
#               subjectAltName (RFC 5922; none for a *.wildcard name);
#               repeatable; the first is the CN (default: localhost)
#   -i IP       an IP-address subjectAltName; repeatable
#   -c CLIENT   also make a client certificate CLIENT-cert.pem/-key.pem
#   -s BASE     name the server files BASE-cert.pem/BASE-key.pem (default
#               server): several server certificates under one CA in DIR
#   --rsa BITS  RSA keys of BITS (>= 2048, default 2048) instead of ECDSA P-256
#   --days N    validity of the certificates (default 825)
#   --force     replace existing files (an existing CA is otherwise reused)
#
# Writes ca.pem (the CA certificate: the ca_list of peers that must trust
# this server), ca-key.pem, server-cert.pem (server certificate followed by
# the CA, i.e. the chain), server-key.pem, and prints the modparam lines.
# An existing CA in DIR is reused, so certificates made by several runs
# into one DIR share it.
set -euo pipefail

dir=./tls-certs names=() ips=() clients=() base=server rsa=0 bits=2048 days=825 force=0
while [ $# -gt 0 ]; do
	case "$1" in
		-d) dir=$2; shift 2 ;;
		-n) names+=("$2"); shift 2 ;;
		-i) ips+=("$2"); shift 2 ;;
		-c) clients+=("$2"); shift 2 ;;
		-s) base=$2; shift 2 ;;
		--rsa) rsa=1
			if [ $# -gt 1 ] && [[ $2 =~ ^[0-9]+$ ]]; then bits=$2; shift; fi
			shift ;;
		--days) days=$2; shift 2 ;;
		--force) force=1; shift ;;
		-h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) echo "tls-certs: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
done
[ ${#names[@]} -gt 0 ] || names=(localhost)
if [ "$rsa" = 1 ] && [ "$bits" -lt 2048 ]; then
	echo "tls-certs: RSA keys shorter than 2048 bits are refused" >&2; exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077

newkey() {
	if [ "$rsa" = 1 ]; then
		openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$bits" -out "$1" 2>/dev/null
	else
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
	fi
}

sign() { # sign CSR EXTFILE OUT
	openssl x509 -req -in "$1" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
		-CAcreateserial -days "$days" -sha256 -extfile "$2" -out "$3" 2>/dev/null
}

if [ "$force" = 1 ] || [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca-key.pem" ]; then
	newkey "$dir/ca-key.pem"
	openssl req -x509 -new -key "$dir/ca-key.pem" -days $((days + 365)) -sha256 \
		-subj "/O=Kamailio TLS demo/CN=Kamailio TLS demo CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$dir/ca.pem"
fi

san=""
for n in "${names[@]}"; do
	# RFC 5922 has no wildcard form of a sip: URI.
	case "$n" in
		\**) san+="DNS:$n," ;;
		*) san+="DNS:$n,URI:sip:$n," ;;
	esac
done
for i in "${ips[@]+"${ips[@]}"}"; do san+="IP:$i,"; done
san=${san%,}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/server.ext" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EXT
if [ "$force" = 1 ] || [ ! -s "$dir/$base-cert.pem" ]; then
	newkey "$dir/$base-key.pem"
	openssl req -new -key "$dir/$base-key.pem" -subj "/CN=${names[0]}" -out "$tmp/server.csr"
	sign "$tmp/server.csr" "$tmp/server.ext" "$tmp/server.pem"
	cat "$tmp/server.pem" "$dir/ca.pem" > "$dir/$base-cert.pem"
fi

for c in "${clients[@]+"${clients[@]}"}"; do
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' > "$tmp/client.ext"
	newkey "$dir/$c-key.pem"
	openssl req -new -key "$dir/$c-key.pem" -subj "/CN=$c" -out "$tmp/client.csr"
	sign "$tmp/client.csr" "$tmp/client.ext" "$dir/$c-cert.pem"
done
chmod 644 "$dir/ca.pem" "$dir/$base-cert.pem"

cat <<OUT
# certificates in $dir
modparam("tls", "certificate", "$dir/$base-cert.pem")
modparam("tls", "private_key", "$dir/$base-key.pem")
modparam("tls", "ca_list", "$dir/ca.pem")
OUT
