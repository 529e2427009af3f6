#!/usr/bin/env bash
# bench/client.sh - the client (issue 5): encrypted file throughput disk to
# disk between two `echolink` processes as a fraction of the raw data-channel
# throughput (two el_peer_tool processes) of the same run, and chat round
# trips while a 1 GiB file flows, against the same with nothing running.
# One process of each pair in each of the two network namespaces of
# tests/harness/netns.sh (needs root), so everything crosses a veth.
# Method: bench/client.mjs; figures: docs/PERFORMANCE.md "Client: files and chat".
#
# Builds optimized echolinkd, echolink and el_peer_tool in build-bench/
# (RelWithDebInfo, no sanitizers) when missing or older than the sources.
# Knobs: BENCH_CLIENT_MIB=256 BENCH_CLIENT_GIB_MIB=1024 BENCH_CLIENT_PINGS=50
# BENCH_CLIENT_JSON=path. Needs about MIB + 2 x GIB_MIB MiB free under
# ${TMPDIR:-/tmp} (the files and bob's copies, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bench-client: $*" >&2; exit 1; }
command -v node >/dev/null || die "node not found"

B=build-bench/bin
if [ ! -x $B/echolink ] || [ ! -x $B/echolinkd ] || [ ! -x $B/el_peer_tool ] ||
    [ -n "$(find src include apps tests/interop/el_peer_tool.c -newer $B/echolink -print -quit)" ]; then
    cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEL_SANITIZE=OFF >/dev/null
    cmake --build build-bench --target echolinkd echolink el_peer_tool -j"$(nproc)" >/dev/null
fi
export ECHOLINK=$PWD/$B/echolink ECHOLINKD=$PWD/$B/echolinkd EL_PEER_TOOL=$PWD/$B/el_peer_tool

PID=
cleanup() {
    local rc=$?
    if [ -n "$PID" ]; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench-client: $ECHOLINK vs $EL_PEER_TOOL, $(nproc) CPUs, two network namespaces" >&2
# netns.sh removes the namespaces (and kills what is left in them) on exit;
# timeout bounds the whole run.
timeout -k 5 1200 tests/harness/netns.sh run node bench/client.mjs &
PID=$!
wait "$PID"
