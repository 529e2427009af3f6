#!/usr/bin/env bash
# install-test.sh BUILD_DIR - `make install` as a user does it, checked:
# installs BUILD_DIR into a temporary DESTDIR, builds examples/loopback.c
# against the installed tree with pkg-config only, runs it (inside the
# test's network namespace: run through netns.sh), then uninstalls and
# checks that nothing is left. Exit 0 on success.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
prefix=/usr/local
DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$dest$prefix" -name echolink.pc -printf '%h\n' | head -1)
[ -n "$libdir" ] || { echo "install-test: no echolink.pc installed" >&2; exit 1; }
for f in bin/echolinkd bin/echolink include/echolink/el_peer.h share/man/man1/echolink.1 \
         share/man/man8/echolinkd.8 share/echolink/web/index.html share/doc/echolink/echolinkd.conf.example; do
  [ -e "$dest$prefix/$f" ] || { echo "install-test: $prefix/$f missing" >&2; exit 1; }
done
so=$(find "$dest$prefix" -name 'libecholink.so.0' | head -1)
[ -n "$so" ] || { echo "install-test: libecholink.so.0 missing" >&2; exit 1; }
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
[ "$soname" = libecholink.so.0 ] || { echo "install-test: SONAME is '$soname'" >&2; exit 1; }
bad=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | grep -v -E '^el_(peer|channel)_' || true)
[ -z "$bad" ] || { echo "install-test: private symbols exported: $bad" >&2; exit 1; }
# the example, built with nothing but the installed tree and pkg-config
export PKG_CONFIG_PATH=$libdir
flags=$(pkg-config --cflags --libs echolink)
san=
if ldd "$so" | grep -q libasan; then san="-fsanitize=address,undefined"; fi
cc -std=c11 -Wall -Wextra -Werror $san "$src/examples/loopback.c" $flags -o "$tmp/loopback"
LD_LIBRARY_PATH=$(dirname "$so") "$tmp/loopback" "${EL_NETNS_ADDR:-127.0.0.1}"
# uninstall, as `make uninstall` does it: every file of the manifest (its
# paths are without DESTDIR), then the directories left empty
DESTDIR=$dest "$src/scripts/uninstall.sh" "$build/install_manifest.txt"
find "$dest" -depth -type d -empty -delete
if [ -e "$dest" ]; then
  echo "install-test: left behind after uninstall:" >&2
  find "$dest" >&2
  exit 1
fi
echo "install-test: ok"
