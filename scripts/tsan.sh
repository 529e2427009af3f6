#!/usr/bin/env bash
# ThreadSanitizer run of the WebRTC stack: builds test_peer and el_peer_tool
# with -fsanitize=thread into build-tsan/, then runs test_peer and the interop
# suites (C-C, C-libwebrtc, C-Chromium) in network namespaces with that tool.
# Fails on any test failure or any ThreadSanitizer report. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DEL_SANITIZE=OFF \
  -DCMAKE_C_FLAGS="-fsanitize=thread -g -O1" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
cmake --build build-tsan --target test_peer el_peer_tool -j"$(nproc)"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export TSAN_OPTIONS="log_path=$logs/tsan report_signal_unsafe=0"
tests/harness/netns.sh run ./build-tsan/bin/test_peer
for t in c2c wrtc chromium; do
  EL_PEER_TOOL=$PWD/build-tsan/bin/el_peer_tool \
    tests/harness/netns.sh run node --test --test-reporter=dot "tests/interop/$t.test.mjs"
done
if ls "$logs"/tsan* >/dev/null 2>&1; then
  cat "$logs"/tsan*
  echo "tsan: ThreadSanitizer reported problems" >&2
  exit 1
fi
echo "tsan: clean (test_peer, interop c2c/wrtc/chromium)"
