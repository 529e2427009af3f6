#!/usr/bin/env bash
# scripts/soak.sh - load and soak of echolinkd (`make check-long`, not CI).
#
# Starts build/bin/echolinkd (the RelWithDebInfo `make build` output: no
# ASan, whose quarantine and shadow memory would hide a flat RSS) on
# 127.0.0.1, logs in SOAK_N signaling clients (bench/soak.mjs, one Node
# process, the client code of bench/loadgen.mjs), makes SOAK_PAIRS of them
# contacts, and keeps SOAK_RATE 1 KB `offer` events per second flowing
# between the pairs for SOAK_MINUTES, plus the server's Engine.IO pings to
# every client (every 25 s, --ping-interval). Every SOAK_SAMPLE seconds it
# records the server's VmRSS, its open descriptors (/proc/PID/fd), the
# relay latencies of that window (receive time - emit time, one process)
# and the CPU of the server, of the generator and of everything else.
#
# Checks (exit 1 when one fails; the table says which):
#   - every client logs in and none is disconnected; every offer is acked
#     ok, delivered once and in order; the server rejects nothing
#     (/metrics echolink_rejected_total);
#   - RSS flat: growth from the end of minute 1 to the end <= max(10 % of
#     the minute-1 RSS, 4 MB). Why: by the end of minute 1 malloc's arenas,
#     SQLite's page cache and lws's buffers are at their working size, so
#     what grows after that is kept per event or per ping. 10 % of a
#     ~35 MB server at 10k clients (2.4 KB each, docs/PERFORMANCE.md) is
#     ~3.5 MB; 4 MB over 9 minutes at 500 events/s is ~15 bytes per relayed
#     event, so a leak of one small allocation per event fails it, while
#     allocator noise (a few hundred KB of arena churn) does not. In a
#     1-minute run the reference is the first sample;
#   - no descriptor leak: once every client has left (half with a close
#     frame, half by a bare TCP close), the server's descriptor count is
#     back to what it was before the logins (after a 50-client warm-up that
#     opens whatever is opened lazily), and /metrics shows no session;
#   - p99 relay latency of the last minute <= 2 x the first minute's, or
#     1 ms, whichever is larger (a sub-millisecond p99 on loopback doubles
#     with one scheduler hiccup of a busy shared machine; 1 ms is still far
#     below what a queue that grows over the run would add).
#
# Addresses and limits: client i binds 127.0.x.y, SOAK_PER_ADDR (50) per
# address, and the server keeps --max-conns-per-ip 64, so the per-address
# limit stays on (and would fail the run if one address were overused);
# --max-conns is SOAK_N + 1000. --rate/--burst keep their defaults (50/s,
# 100): each sender emits SOAK_RATE / SOAK_PAIRS = 2.5 events/s. Server on
# core 0, generator on core 1, as bench/run.sh. Loopback only.
#
# Knobs: SOAK_N=10000 SOAK_MINUTES=10 SOAK_PAIRS=200 SOAK_RATE=500
# SOAK_SIZE=1024 SOAK_PER_ADDR=50 SOAK_SAMPLE=10 (s, divides 60)
# SOAK_JSON=path (results, for docs/RELIABILITY.md) SOAK_BIN=build/bin/echolinkd
# Development: SOAK_N=1000 SOAK_MINUTES=1 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${SOAK_N:-10000}
MINUTES=${SOAK_MINUTES:-10}
PAIRS=${SOAK_PAIRS:-200}
RATE=${SOAK_RATE:-500}
SIZE=${SOAK_SIZE:-1024}
PER_ADDR=${SOAK_PER_ADDR:-50}
SAMPLE=${SOAK_SAMPLE:-10}
BIN=${SOAK_BIN:-build/bin/echolinkd}
PER_IP_LIMIT=64
SERVER_CPU=0
LOAD_CPU=1

die() { echo "soak: $*" >&2; exit 1; }

for v in N MINUTES PAIRS RATE SIZE PER_ADDR SAMPLE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "SOAK_$v must be a positive integer, not '${!v}'"
done
[ "$N" -ge $((2 * PAIRS)) ] || die "SOAK_N=$N is below 2 x SOAK_PAIRS=$PAIRS"
[ $((60 % SAMPLE)) -eq 0 ] || die "SOAK_SAMPLE=$SAMPLE does not divide 60"
[ "$PER_ADDR" -le "$PER_IP_LIMIT" ] || die "SOAK_PER_ADDR=$PER_ADDR is above --max-conns-per-ip $PER_IP_LIMIT"
[ -x "$BIN" ] || die "$BIN not found: run 'make build'"
# (captured, not piped into grep -q: with pipefail an early grep exit would
# fail nm with SIGPIPE and hide the match)
if [[ $(nm -D "$BIN" 2>/dev/null || true) == *__asan_init* ]]; then
    die "$BIN is an ASan build; the RSS check needs the RelWithDebInfo 'make build'"
fi
command -v node >/dev/null || die "node not found"
[ -d node_modules/ws ] || die "node_modules missing: run 'npm ci'"
PIN_S=() PIN_L=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_S=(taskset -c "$SERVER_CPU") PIN_L=(taskset -c "$LOAD_CPU")
fi

# N server sockets in echolinkd and N client sockets in node, each process
# with its own limit: raise the soft limit towards the hard one and say
# clearly when that is not enough.
NEED=$((N + 200))
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ] && [ "$HARD" -lt "$NEED" ]; then
    die "open-files hard limit is $HARD; $N clients need $NEED per process (lower SOAK_N or raise the hard limit)"
fi
SOFT=20000
if [ "$HARD" != unlimited ] && [ "$HARD" -lt "$SOFT" ]; then SOFT=$HARD; fi
ulimit -Sn "$SOFT" 2>/dev/null || die "could not raise the open-files limit to $SOFT (now $(ulimit -n))"
[ "$(ulimit -n)" -ge "$NEED" ] || die "open-files limit $(ulimit -n) is below $NEED"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/echolink-soak.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ] && [ -s "$TMP/server.log" ]; then
        echo "--- server log (last 20 lines):" >&2
        tail -20 "$TMP/server.log" >&2
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${PIN_S[@]}" "$BIN" --bind 127.0.0.1 --port 0 --port-file "$TMP/port" --db "sqlite:$TMP/soak.db" \
    --max-conns $((N + 1000)) --max-conns-per-ip $PER_IP_LIMIT --log-level warn >"$TMP/server.log" 2>&1 &
SPID=$!
PIDS+=("$SPID")
for _ in $(seq 100); do
    [ -s "$TMP/port" ] && break
    kill -0 "$SPID" 2>/dev/null || die "echolinkd exited at start"
    sleep 0.1
done
[ -s "$TMP/port" ] || die "echolinkd did not start in 10 s"
PORT=$(cat "$TMP/port")

# Watchdog: the soak itself, plus identities, logins and teardown (about
# 1 ms of generator CPU per identity and per login, and a 30 s settle).
BUDGET=$((MINUTES * 60 + 120 + N / 50))
echo "soak: echolinkd pid $SPID port $PORT; $N clients, $PAIRS pairs at $RATE offers/s for $MINUTES min" \
    "(watchdog $BUDGET s)" >&2
JSON_ARGS=()
[ -n "${SOAK_JSON:-}" ] && JSON_ARGS=(--json "$SOAK_JSON")
# In the background and waited for, so that a signal reaches the trap at once.
timeout -k 5 $((BUDGET + 10)) "${PIN_L[@]}" node bench/soak.mjs --port "$PORT" --pid "$SPID" \
    --n "$N" --per-addr "$PER_ADDR" --pairs "$PAIRS" --rate "$RATE" --size "$SIZE" \
    --minutes "$MINUTES" --sample "$SAMPLE" --clk-tck "$(getconf CLK_TCK)" --watchdog "$BUDGET" \
    "${JSON_ARGS[@]}" &
LPID=$!
PIDS+=("$LPID")
rc=0
wait "$LPID" || rc=$?
kill -0 "$SPID" 2>/dev/null || die "echolinkd died during the soak"
[ "$rc" -eq 0 ] || die "failed (bench/soak.mjs exit $rc)"
echo "soak: passed" >&2
