#!/usr/bin/env bash
# bench/cluster.sh - relay throughput, latency and server CPU of one echolinkd
# node against 2, 3 and 4 nodes behind one redis-server (cluster mode,
# --redis), in one run. Method: bench/cluster.mjs; figures: docs/PERFORMANCE.md
# "Cluster: one node against several".
#
# Builds an optimized echolinkd in build-bench/ (RelWithDebInfo, no
# sanitizers) unless ECHOLINKD names one. Knobs (environment), as in
# bench/run.sh: BENCH_PAIRS=200 BENCH_WINDOW=4 BENCH_SIZE=1024
# BENCH_DURATION=10 (s) BENCH_WARM=2 (s); BENCH_CLUSTER_CONFIGS="1 1r 2 3 4"
# (1 = one node without Redis, 1r = one node with Redis, K = K nodes);
# BENCH_CLUSTER_JSON=path (also write the raw results there).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

die() { echo "bench-cluster: $*" >&2; exit 1; }
command -v node >/dev/null || die "node not found"
command -v redis-server >/dev/null || die "redis-server not found"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
command -v setpriv >/dev/null || die "setpriv not found (util-linux)"
[ -d node_modules/ws ] || die "node_modules missing: run 'npm ci'"
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (server side on core 0, load on core 1)"

if [ -z "${ECHOLINKD:-}" ]; then
    bench_build "src include apps/echolinkd" echolinkd
    ECHOLINKD=$PWD/build-bench/bin/echolinkd
fi
[ -x "$ECHOLINKD" ] || die "$ECHOLINKD not executable"
export ECHOLINKD


# bench/cluster.mjs kills its children (setpriv --pdeathsig KILL, and at the
# end of each configuration); timeout bounds the whole run.
bench_run $((5 * (${BENCH_DURATION:-10} + ${BENCH_WARM:-2} + 60))) node bench/cluster.mjs
