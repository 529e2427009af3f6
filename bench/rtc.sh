#!/usr/bin/env bash
# bench/rtc.sh - WebRTC data channels: libecholink's C peer pair (two
# el_peer_tool processes) vs a libwebrtc pair (@roamhq/wrtc) and a
# libdatachannel pair (node-datachannel), two node processes each, in one
# network namespace (tests/harness/netns.sh; needs root).
# Method: bench/rtc.mjs; figures: docs/PERFORMANCE.md "WebRTC data channels".
#
# Builds an optimized el_peer_tool in build-bench/ (RelWithDebInfo, no
# sanitizers) unless EL_PEER_TOOL names one. Knobs: BENCH_RTC_ROUNDS=3
# BENCH_RTC_SETUPS=6 BENCH_RTC_MIB=64 BENCH_RTC_PINGS=1000
# BENCH_RTC_JSON=path BENCH_RTC_IMPLS=echolink,libdatachannel (a subset)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

die() { echo "bench-rtc: $*" >&2; exit 1; }
command -v node >/dev/null || die "node not found"
[ -d node_modules/@roamhq/wrtc ] || die "node_modules missing: run 'npm ci'"

if [ -z "${EL_PEER_TOOL:-}" ]; then
    bench_build "src include tests/interop/el_peer_tool.c" el_peer_tool
    EL_PEER_TOOL=$PWD/build-bench/bin/el_peer_tool
fi
[ -x "$EL_PEER_TOOL" ] || die "$EL_PEER_TOOL not executable"
export EL_PEER_TOOL


echo "bench-rtc: $EL_PEER_TOOL vs @roamhq/wrtc and node-datachannel, $(nproc) CPUs, one network namespace" >&2
# netns.sh removes the namespaces (and kills what is left in them) on exit;
# timeout bounds the whole run.
bench_run 300 tests/harness/netns.sh run node bench/rtc.mjs
