#!/usr/bin/env bash
# bench/run.sh - echolinkd vs a reference Node.js Socket.IO 4.8 relay
# (bench/ref-server.mjs), side by side, in one run. `make bench` builds and
# calls this. Method and figures: docs/PERFORMANCE.md.
#
#   1. memory per idle connection: RSS growth of the server for N WebSocket
#      clients that are Socket.IO-connected and logged in, divided by N
#   2. relay throughput and latency: P sender->receiver pairs, 1 KB `offer`
#      events, a window of W outstanding (unacknowledged) events per sender
#   3. server CPU (utime+stime from /proc/PID/stat) per relayed event
#
# Each phase runs against a fresh server process pinned to core 0; the load
# generator (bench/loadgen.mjs, the same client code for both servers) runs
# on core 1. Everything listens on and connects to 127.0.0.1 only.
#
# Knobs (environment): BENCH_N=10000 BENCH_PAIRS=200 BENCH_WINDOW=4
# BENCH_SIZE=1024 BENCH_DURATION=10 (s) BENCH_WARM=2 (s)
# BENCH_IDLE=0 (s; e.g. 30: also measure server CPU while the N connections
#   sit idle, one ping round; adds 2 x BENCH_IDLE seconds)
# BENCH_JSON=path (also write the raw results there)
# BENCH_OUT=dir (build/bench-results): every benchmark's JSON results; the
#   plots of docs/PERFORMANCE.md are made from them into BENCH_PLOTS
#   (docs/perf) by bench/plot.mjs (gnuplot)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_N:-10000}
PAIRS=${BENCH_PAIRS:-200}
WINDOW=${BENCH_WINDOW:-4}
SIZE=${BENCH_SIZE:-1024}
DURATION=${BENCH_DURATION:-10}
WARM=${BENCH_WARM:-2}
IDLE=${BENCH_IDLE:-0}
OUT=$(realpath -m "${BENCH_OUT:-build/bench-results}")
PLOTS=${BENCH_PLOTS:-docs/perf}
BIN=build/bin/echolinkd
SERVER_CPU=0
LOAD_CPU=1

die() { echo "bench: $*" >&2; exit 1; }

[ -x "$BIN" ] || die "$BIN not found: run 'make build' (or 'make bench')"
command -v node >/dev/null || die "node not found"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
[ -d node_modules/socket.io ] && [ -d node_modules/ws ] || die "node_modules missing: run 'npm ci'"
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (server on core $SERVER_CPU, load on core $LOAD_CPU)"

# 10k server sockets + 10k client sockets, in two processes.
ulimit -n 20000 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((N + 200)) ] || die "open-files limit $(ulimit -n) is below $((N + 200))"
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/echolink-bench.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SPID=
SPORT=
# start_server ours|ref mem|relay
start_server() {
    local kind=$1 mode=$2 tag="$1-$2"
    rm -f "$TMP/$tag.port"
    if [ "$kind" = ours ]; then
        local presence=()
        # --open-presence makes every login announce itself to every online
        # user (O(online) work and messages per login): right for the relay
        # pairs, but at 10k clients it turns the memory phase into a presence
        # storm, so the idle-connection phase uses the default (contacts-only)
        # visibility. See docs/PERFORMANCE.md.
        [ "$mode" = relay ] && presence=(--open-presence)
        taskset -c $SERVER_CPU "$BIN" --bind 127.0.0.1 --port 0 --port-file "$TMP/$tag.port" \
            --db "sqlite:$TMP/$tag.db" "${presence[@]}" --rate 1000000 --burst 1000000 \
            --max-conns 20000 --max-conns-per-ip 0 --max-new-ids-per-ip 0 --log-level warn >"$TMP/$tag.log" 2>&1 &
    else
        taskset -c $SERVER_CPU node bench/ref-server.mjs --port 0 --port-file "$TMP/$tag.port" \
            >"$TMP/$tag.log" 2>&1 &
    fi
    SPID=$!
    PIDS+=("$SPID")
    for _ in $(seq 100); do
        [ -s "$TMP/$tag.port" ] && break
        kill -0 "$SPID" 2>/dev/null || { cat "$TMP/$tag.log" >&2; die "$kind server exited at start"; }
        sleep 0.1
    done
    [ -s "$TMP/$tag.port" ] || die "$kind server did not start in 10 s"
    SPORT=$(cat "$TMP/$tag.port")
}

stop_server() {
    kill -TERM "$SPID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
}

# phase ours|ref mem|relay -> $TMP/<kind>-<mode>.json
phase() {
    local kind=$1 mode=$2 tag="$1-$2" extra=()
    if [ "$mode" = mem ]; then
        extra=(--n "$N" --idle "$IDLE" --watchdog $((110 + IDLE)))
    else
        extra=(--pairs "$PAIRS" --window "$WINDOW" --size "$SIZE" --duration "$DURATION" \
            --warm "$WARM" --watchdog $((DURATION + WARM + 40)))
    fi
    start_server "$kind" "$mode"
    echo "== $tag: server pid $SPID port $SPORT" >&2
    # In the background and waited for, so that a signal reaches the trap
    # (and the cleanup) at once instead of after the load generator ends.
    timeout $((120 + IDLE)) taskset -c $LOAD_CPU node bench/loadgen.mjs "$mode" --port "$SPORT" \
        --pid "$SPID" --clk-tck "$CLK_TCK" "${extra[@]}" >"$TMP/$tag.out" &
    local lg=$!
    PIDS+=("$lg")
    if ! wait "$lg"; then
        echo "--- server log:" >&2; tail -20 "$TMP/$tag.log" >&2
        die "$tag: load generator failed"
    fi
    kill -0 "$SPID" 2>/dev/null || { tail -20 "$TMP/$tag.log" >&2; die "$tag: the server died"; }
    grep '^RESULT ' "$TMP/$tag.out" | sed 's/^RESULT //' >"$TMP/$tag.json"
    [ -s "$TMP/$tag.json" ] || die "$tag: no result"
    cat "$TMP/$tag.json" >&2
    stop_server
}

echo "bench: N=$N idle connections; relay: $PAIRS pairs, window $WINDOW, $SIZE-byte offers," \
    "${WARM}s warm-up + ${DURATION}s measured; server on core $SERVER_CPU, load on core $LOAD_CPU" >&2
start=$(date +%s)
phase ours mem
phase ref mem
phase ours relay
phase ref relay

node bench/report.mjs "$TMP/ours-mem.json" "$TMP/ref-mem.json" "$TMP/ours-relay.json" "$TMP/ref-relay.json"
# Results of an earlier run would be plotted as if they were this run's.
rm -rf "$OUT"
mkdir -p "$OUT"
node -e 'const f=require("fs");const o={};for(const p of process.argv.slice(1)){o[p.split("/").pop().replace(".json","")]=JSON.parse(f.readFileSync(p,"utf8"))}console.log(JSON.stringify(o,null,1))' \
    "$TMP/ours-mem.json" "$TMP/ref-mem.json" "$TMP/ours-relay.json" "$TMP/ref-relay.json" >"$OUT/signaling.json"
[ -z "${BENCH_JSON:-}" ] || cp "$OUT/signaling.json" "$BENCH_JSON"
BENCH_E2EE_JSON=$OUT/e2ee.json bench/e2ee.sh || echo "bench: bench/e2ee.sh failed" >&2
BENCH_RTC_JSON=$OUT/rtc.json bench/rtc.sh ||
    echo "bench: bench/rtc.sh (WebRTC data channels) failed or was skipped (needs root and ip netns)" >&2
BENCH_CLIENT_JSON=$OUT/client.json bench/client.sh ||
    echo "bench: bench/client.sh (client files and chat) failed or was skipped (needs root and ip netns)" >&2
BENCH_CLUSTER_JSON=$OUT/cluster.json bench/cluster.sh ||
    echo "bench: bench/cluster.sh (one node against several behind Redis) failed or was skipped (needs redis-server)" >&2
if command -v gnuplot >/dev/null; then
    mkdir -p "$PLOTS"
    node bench/plot.mjs "$OUT" "$PLOTS" || echo "bench: bench/plot.mjs failed" >&2
else
    echo "bench: gnuplot not found (scripts/install-deps.sh installs it): no plots" >&2
fi
echo "bench: done in $(($(date +%s) - start)) s; results in $OUT, plots in $PLOTS" >&2
