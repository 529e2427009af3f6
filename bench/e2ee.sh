#!/usr/bin/env bash
# bench/e2ee.sh - what EchoLink's end-to-end encryption costs (PROTOCOL.md §9),
# beside the machine's own AES-256-GCM speed from `openssl speed` in the
# same run: per message, one frame sealed + opened (C el_fcipher and the
# browser's web/lib/frame.js on Node's WebCrypto), and one whole Noise XX
# handshake (both sides). The reference per message is 2 x the time
# `openssl speed -evp aes-256-gcm -bytes N` needs for N bytes (one encrypt
# and one decrypt). Figures: docs/PERFORMANCE.md.
#
#   bench/e2ee.sh            (called by `make bench`; BENCH_E2EE_SECS=1 per figure;
#                            BENCH_E2EE_JSON=path also writes the figures there)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_E2EE_SECS:-1}
SIZES=(16 100 1024 8192 16384 65536)

if [ ! -x build-bench/bin/e2ee_bench ] || [ -n "$(find src bench/e2ee_bench.c -newer build-bench/bin/e2ee_bench -print -quit)" ]; then
    cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEL_SANITIZE=OFF >/dev/null
    cmake --build build-bench --target e2ee_bench -j"$(nproc)" >/dev/null
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/echolink-e2ee.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
taskset -c 0 build-bench/bin/e2ee_bench "$SECS" >"$TMP/c"
taskset -c 0 node bench/e2ee.mjs "$SECS" >"$TMP/js"
for n in "${SIZES[@]}"; do
    kbs=$(taskset -c 0 openssl speed -evp aes-256-gcm -seconds "$SECS" -bytes "$n" 2>/dev/null |
        awk '/^AES-256-GCM/ { sub(/k$/, "", $2); print $2 }')
    echo "openssl $n $kbs"
done >"$TMP/ossl"

echo "== E2EE: one message sealed + opened (AES-256-GCM frame), core 0 =="
printf '%8s %14s %14s %16s %10s %10s\n' bytes "C ns/msg" "JS ns/msg" "openssl ns/2x" "C/openssl" "JS/openssl"
for n in "${SIZES[@]}"; do
    c=$(awk -v n="$n" '$1 == "frame" && $2 == n { print $3 }' "$TMP/c")
    js=$(awk -v n="$n" '$1 == "frame" && $2 == n { print $3 }' "$TMP/js")
    kbs=$(awk -v n="$n" '$2 == n { print $3 }' "$TMP/ossl")
    ref=$(awk -v n="$n" -v k="$kbs" 'BEGIN { printf "%.0f", 2 * n / (k * 1000) * 1e9 }')
    awk -v n="$n" -v c="$c" -v js="$js" -v r="$ref" \
        'BEGIN { printf "%8d %14.0f %14.0f %16.0f %10.2f %10.2f\n", n, c, js, r, c / r, js / r }'
done
echo "== E2EE: one Noise_XX handshake, both sides (keys, DH, signatures) =="
awk '$1 == "handshake" { printf "C   %8.1f us  (%d handshakes)\n", $2, $3 }' "$TMP/c"
awk '$1 == "handshake" { printf "JS  %8.1f us  (%d handshakes)\n", $2, $3 }' "$TMP/js"
if [ -n "${BENCH_E2EE_JSON:-}" ]; then
    node -e '
const fs = require("fs");
const [cf, jf, of, sizes] = process.argv.slice(1);
const rows = (f) => fs.readFileSync(f, "utf8").trim().split("\n").map((l) => l.trim().split(/\s+/));
const c = rows(cf), js = rows(jf), ossl = rows(of);
const n = sizes.split(" ").map(Number);
const frame = (r, s) => Number((r.find((x) => x[0] === "frame" && Number(x[1]) === s) || [])[2]);
const kbs = (s) => Number((ossl.find((x) => Number(x[1]) === s) || [])[2]);
const hs = (r) => Number((r.find((x) => x[0] === "handshake") || [])[1]);
fs.writeFileSync(process.env.BENCH_E2EE_JSON, JSON.stringify({
  sizes: n, c: n.map((s) => frame(c, s)), js: n.map((s) => frame(js, s)),
  openssl: n.map((s) => 2 * s / (kbs(s) * 1000) * 1e9), hs_c_us: hs(c), hs_js_us: hs(js),
}, null, 1));
' "$TMP/c" "$TMP/js" "$TMP/ossl" "${SIZES[*]}"
fi
