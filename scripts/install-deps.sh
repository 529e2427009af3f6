#!/usr/bin/env bash
# Installs every Debian package and npm tool EchoLink needs. Idempotent: a
# second run installs nothing and takes a second. Run as root (or with sudo).
#   scripts/install-deps.sh            everything (build, tests, services)
#   scripts/install-deps.sh --build    only what building and `make run` need
# Both modes install the npm packages: the web client's browser modules
# (socket.io-client, @noble/hashes) come from them, copied into web/vendor/.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(
  build-essential cmake pkg-config git ca-certificates
  libwebsockets-dev libwebsockets-evlib-uv libuv1-dev
  libssl-dev libjansson-dev libjsmn-dev libsqlite3-dev
  libnice-dev libusrsctp-dev libsoup-3.0-dev libglib2.0-dev
  libpq-dev libhiredis-dev libncurses-dev
  libcmocka-dev nodejs
)
TEST_PKGS=(
  iproute2 nftables procps psmisc curl sqlite3 openssl tmux fonts-noto-color-emoji groff-base
  debhelper lintian fakeroot gnuplot-nox
  clang libclang-rt-14-dev
  chromium chromium-driver fonts-liberation
  coturn redis-server postgresql
)

mode=${1:-all}
pkgs=("${BUILD_PKGS[@]}")
[ "$mode" = --build ] || pkgs+=("${TEST_PKGS[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# nodejs may come from another origin (nodesource) under the same name; any
# node >= 18 will do.
if command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "install-deps: installing ${missing[*]}"
  # Keep the packaged services (postgresql, redis, coturn) from starting:
  # tests start their own on private ports.
  policy=/usr/sbin/policy-rc.d; made_policy=0
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null; $SUDO chmod +x $policy; made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ $made_policy = 1 ] && $SUDO rm -f $policy
fi

# nodejs from nodesource bundles npm (and conflicts with Debian's package).
if ! command -v npm >/dev/null 2>&1; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y -qq --no-install-recommends npm
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "install-deps: Node.js $major is too old; EchoLink needs Node.js 18 or newer" >&2
  exit 1
fi
# npm packages pinned by package-lock.json; reinstall only when the lock changed.
stamp=node_modules/.echolink-lock-stamp
if [ ! -f $stamp ] || ! cmp -s package-lock.json $stamp; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json $stamp
fi
# Browser modules served by echolinkd under /vendor/ (no build step): plain
# copies of the pinned packages' ES module files, refreshed with the lock.
vstamp=web/vendor/.echolink-lock-stamp
if [ ! -f $vstamp ] || ! cmp -s package-lock.json $vstamp; then
  rm -rf web/vendor
  mkdir -p web/vendor/noble-hashes
  cp node_modules/@noble/hashes/esm/*.js web/vendor/noble-hashes/
  # the seed's own client, as an ES module (web client signaling)
  mkdir -p web/vendor/socket.io-client
  cp node_modules/socket.io-client/dist/socket.io.esm.min.js web/vendor/socket.io-client/
  # browsers have no node_modules: the package's self-imports become relative
  rm -f web/vendor/noble-hashes/cryptoNode.js # node's variant of crypto.js
  sed -i "s#from '@noble/hashes/\([a-z0-9-]*\)'#from './\1.js'#" web/vendor/noble-hashes/*.js
  cp package-lock.json $vstamp
fi
echo "install-deps: ok"
