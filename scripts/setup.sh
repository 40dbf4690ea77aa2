#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to build, run and test
# the module. Idempotent: when every package is present it prints nothing.
set -euo pipefail

packages=(
	kamailio kamailio-tls-modules kamailio-extra-modules
	build-essential make gcc pkg-config dpkg-dev libssl-dev openssl check
	python3 python3-cryptography ca-certificates sslscan procps iproute2
	clang libclang-rt-14-dev gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "setup: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
