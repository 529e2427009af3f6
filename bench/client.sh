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
. bench/lib.sh

die() { echo "bench-client: $*" >&2; exit 1; }
command -v node >/dev/null || die "node not found"

B=build-bench/bin
bench_build "src include apps tests/interop/el_peer_tool.c" echolink echolinkd el_peer_tool
export ECHOLINK=$PWD/$B/echolink ECHOLINKD=$PWD/$B/echolinkd EL_PEER_TOOL=$PWD/$B/el_peer_tool


echo "bench-client: $ECHOLINK vs $EL_PEER_TOOL, $(nproc) CPUs, two network namespaces" >&2
# netns.sh removes the namespaces (and kills what is left in them) on exit;
# timeout bounds the whole run.
bench_run 1200 tests/harness/netns.sh run node bench/client.mjs
