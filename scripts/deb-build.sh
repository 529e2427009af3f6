#!/usr/bin/env bash
# deb-build.sh - builds the Debian packages from a copy of the working tree
# in a temporary folder (dpkg-buildpackage writes into the parent directory),
# runs lintian on them, unpacks the server's package with dpkg -x and starts
# that echolinkd on a free loopback port until /healthz answers. Part of
# `make check-long`. Leaves the .deb files in build-deb/ (or $1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-deb}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
src=$tmp/echolink-0.1.0
mkdir -p "$src" "$out"
# the working tree as git sees it (tracked and new files, nothing ignored),
# plus web/vendor: browser modules install-deps copies from npm
(cd "$root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$src"
[ -d "$root/web/vendor" ] || { echo "deb-build: web/vendor missing: run scripts/install-deps.sh" >&2; exit 1; }
cp -a "$root/web/vendor" "$src/web/"
(cd "$src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) > "$out/build.log" 2>&1 ||
  { tail -40 "$out/build.log" >&2; exit 1; }
cp "$tmp"/*.deb "$out"/
echo "deb-build: $(cd "$out" && ls *.deb | tr '\n' ' ')"
# lintian: no errors (warnings are listed)
if ! lintian --fail-on error "$tmp"/*.changes > "$out/lintian.log" 2>&1; then
  cat "$out/lintian.log" >&2
  echo "deb-build: lintian reports errors" >&2
  exit 1
fi
grep -c . "$out/lintian.log" | xargs -I{} echo "deb-build: lintian clean of errors ({} lines of warnings/info in $out/lintian.log)"
# the server from its unpacked package
x=$tmp/x
dpkg -x "$tmp"/echolinkd_*.deb "$x"
dpkg -x "$tmp"/libecholink0_*.deb "$x"
"$x/usr/bin/echolinkd" --bind 127.0.0.1 --port 0 --port-file "$tmp/port" --db "sqlite:$tmp/db" \
  --web "$x/usr/share/echolink/web" > "$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")
curl -fsS "http://127.0.0.1:$port/healthz" | grep -q ok
curl -fsS "http://127.0.0.1:$port/" | grep -q EchoLink
echo "deb-build: the packaged echolinkd serves /healthz and the web client"
