#!/usr/bin/env bash
# Prepares the host core's source tree (headers and build flags) in .host/:
# apt-get source of exactly the installed kamailio version, the modules
# deleted right after extraction (none of their code is used here), then
# `make cfg` so that src/config.mak holds the core's compile flags.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/.host"
ver=$(dpkg-query -W -f='${Version}' kamailio)
upstream=${ver%%-*}
src="$dest/kamailio-$upstream"
[ -f "$src/src/config.mak" ] && exit 0

if ! apt-get source --help >/dev/null 2>&1 || ! command -v dpkg-source >/dev/null; then
	echo "host: dpkg-dev is needed (run scripts/setup.sh)" >&2
	exit 1
fi
# A deb-src entry for the suites the system already uses.
if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "host: adding deb-src for bookworm"
	cat > /etc/apt/sources.list.d/tls-module-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	apt-get update -qq
fi
mkdir -p "$dest"
cd "$dest"
rm -rf "$src"
echo "host: apt-get source kamailio=$ver"
apt-get source -qq "kamailio=$ver" >/dev/null 2>&1 || {
	apt-get update -qq
	apt-get source -qq "kamailio=$ver" >/dev/null
}
# Kamailio's own modules (its TLS module among them) must never be used here.
rm -rf "$src/src/modules"
mkdir -p "$src/src/modules"
make -s -C "$src" cfg FLAVOUR=kamailio >/dev/null
test -f "$src/src/config.mak"
echo "host: core $upstream prepared in .host/"
