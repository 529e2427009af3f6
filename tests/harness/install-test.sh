#!/usr/bin/env bash
# install-test.sh BUILD_DIR - `make install` as a user does it, checked:
# installs BUILD_DIR into a temporary DESTDIR, checks the files, the SONAME
# and that libecholink exports exactly the functions of its public headers,
# builds the installed examples (share/doc/echolink/examples) against the
# installed tree with pkg-config only, runs loopback.c, then chat.c against
# a test echolinkd (BUILD_DIR/bin/echolinkd on a free port of
# ${EL_NETNS_ADDR:-127.0.0.1}, temporary SQLite db, killed on any exit),
# then uninstalls and checks that nothing is left. Run it inside the test's
# network namespace (through netns.sh): ICE ignores loopback addresses.
# Exit 0 on success.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
srv=
cleanup() {
  if [ -n "$srv" ]; then
    kill "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "install-test: $*" >&2; exit 1; }
# set -e ends the script at the first failing command: say which one
trap 'echo "install-test: line $LINENO: command failed (exit $?)" >&2' ERR
dest=$tmp/root
prefix=/usr/local
DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$dest$prefix" -name echolink.pc -printf '%h\n' | head -1)
[ -n "$libdir" ] || fail "no echolink.pc installed"
examples=share/doc/echolink/examples
for f in bin/echolinkd bin/echolink include/echolink/el_peer.h include/echolink/el_signal.h \
         include/echolink/el_identity.h share/man/man1/echolink.1 \
         share/man/man8/echolinkd.8 share/echolink/web/index.html \
         share/doc/echolink/echolinkd.conf.example $examples/loopback.c $examples/chat.c; do
  [ -e "$dest$prefix/$f" ] || fail "$prefix/$f missing"
done
so=$(find "$dest$prefix" -name 'libecholink.so.0' | head -1)
[ -n "$so" ] || fail "libecholink.so.0 missing"
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
[ "$soname" = libecholink.so.0 ] || fail "SONAME is '$soname'"
# exported functions == functions declared in the installed public headers
# (cmake/libecholink.map): no private symbol leaks, no public one is missing
grep -ohE '\bel_[a-z_]+\(' "$dest$prefix"/include/echolink/*.h | tr -d '(' | sort -u \
  > "$tmp/declared"
nm -D --defined-only "$so" | awk '$2 == "T" {sub(/@.*/, "", $3); print $3}' | sort -u \
  > "$tmp/exported"
[ -s "$tmp/declared" ] || fail "no function found in the public headers"
if ! diff_out=$(diff "$tmp/declared" "$tmp/exported"); then
  fail "exported symbols differ from the public headers (< declared only, > exported only):
$diff_out"
fi
# the examples, built with nothing but the installed tree and pkg-config
export PKG_CONFIG_PATH=$libdir
flags=$(pkg-config --cflags --libs echolink)
san=
# not grep -q: it exits at the first match, ldd then dies of SIGPIPE and
# pipefail makes the test fail now and then (the example was then built
# without the sanitizer and refused to start: "ASan runtime does not come
# first")
if ldd "$so" | grep libasan >/dev/null; then san="-fsanitize=address,undefined"; fi
for ex in loopback chat; do
  cc -std=c11 -Wall -Wextra -Werror $san "$dest$prefix/$examples/$ex.c" $flags -o "$tmp/$ex"
done
export LD_LIBRARY_PATH=$(dirname "$so")
addr=${EL_NETNS_ADDR:-127.0.0.1}
"$tmp/loopback" "$addr"

# chat.c through a test server. setpriv --pdeathsig: the server dies with
# this script even when it is SIGKILLed (a CTest timeout) and no trap runs.
# The caller's ECHOLINK_* variables (every server option has one, and
# ECHOLINK_CONFIG names a file) are dropped: the test server runs with its
# defaults (ECHOLINK_RATE=1 in the caller's environment made this test fail).
while read -r v; do unset "$v"; done < <(compgen -e | grep '^ECHOLINK_' || true)
setpriv --pdeathsig KILL "$build/bin/echolinkd" --bind "$addr" --port 0 \
  --port-file "$tmp/port" --db "sqlite:$tmp/db" >"$tmp/echolinkd.log" 2>&1 &
srv=$!
for _ in $(seq 100); do   # 10 s at most
  [ -s "$tmp/port" ] && break
  kill -0 "$srv" 2>/dev/null || { cat "$tmp/echolinkd.log" >&2; fail "echolinkd exited"; }
  sleep 0.1
done
[ -s "$tmp/port" ] || { cat "$tmp/echolinkd.log" >&2; fail "echolinkd wrote no port file in 10 s"; }
port=$(cat "$tmp/port")
# chat bounds itself (20 s); timeout is the backstop
if ! timeout 40 "$tmp/chat" "ws://$addr:$port" "$addr"; then
  echo "install-test: echolinkd log:" >&2
  tail -50 "$tmp/echolinkd.log" >&2
  fail "examples/chat.c failed against echolinkd"
fi
kill -0 "$srv" 2>/dev/null || { tail -50 "$tmp/echolinkd.log" >&2; fail "echolinkd died during the chat"; }
kill "$srv"
wait "$srv" 2>/dev/null || true
srv=

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
