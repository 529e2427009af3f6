#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer targets in tests/fuzz with clang and run each.
#
#   scripts/fuzz.sh short   ~20 s per target (CI, `make fuzz`)
#   scripts/fuzz.sh long    10 min per target (`make check-long`)
#   scripts/fuzz.sh SECONDS any duration per target
#
# Builds in build-fuzz/ (EL_FUZZ_BUILD overrides). Each target starts from
# its seeds in tests/fuzz/corpus/<target>/ and writes what it discovers to
# build-fuzz/corpus/<target>/ (the repository's seeds are never modified).
# Ends with a table "target execs exec/s cov corpus" per target.
# Crash inputs land in build-fuzz/artifacts/. Exits non-zero if any target
# crashes, times out, leaks or fails to build.
set -euo pipefail

mode=${1:-short}
case $mode in
short) secs=20 ;;
long) secs=600 ;;
*[!0-9]* | '')
    echo "usage: $0 short|long|SECONDS" >&2
    exit 2
    ;;
*) secs=$mode ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
build=${EL_FUZZ_BUILD:-$root/build-fuzz}
targets=(json sio eio sdp dcep msg frame hs http event seal hist ws)

cc=${CC:-}
if [[ -z $cc || $cc != *clang* ]]; then
    for c in clang clang-18 clang-17 clang-16 clang-15 clang-14; do
        if command -v "$c" >/dev/null 2>&1; then
            cc=$c
            break
        fi
    done
fi
if [[ -z $cc ]] || ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz.sh: clang is required (libFuzzer)" >&2
    exit 2
fi

jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DEL_FUZZ=ON -DEL_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1 || {
    cat "$build/configure.log" >&2
    exit 1
}
cmake --build "$build" -j"$jobs" --target "${targets[@]/#/fuzz_}"

mkdir -p "$build/artifacts"
failed=()
table=()
for t in "${targets[@]}"; do
    work="$build/corpus/$t"
    seeds="$root/tests/fuzz/corpus/$t"
    mkdir -p "$work"
    dict=()
    case $t in
    json | msg | event) dict=(-dict="$root/tests/fuzz/json.dict") ;;
    sio | eio) dict=(-dict="$root/tests/fuzz/sio.dict") ;;
    sdp) dict=(-dict="$root/tests/fuzz/sdp.dict") ;;
    esac
    log="$build/fuzz-$t.log"
    echo "== fuzz_$t: ${secs}s (log: $log)"
    set +e
    "$build/bin/fuzz_$t" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len=4096 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
        "$work" "$seeds" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //' || true)
    rate=$(grep -o 'exec/s: [0-9]*' "$log" | tail -1 | sed 's/exec\/s: //' || true)
    corpus=$(find "$work" -type f | wc -l)
    line="fuzz_$t: rc=$rc execs=${execs:-?} exec/s=${rate:-?} cov=${cov:-?} corpus=$corpus"
    table+=("$(printf '%-8s %12s %8s %6s %7s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$corpus")")
    if [[ $rc -ne 0 ]]; then
        failed+=("$t")
        echo "$line  FAILED" >&2
        grep -E 'ERROR|invariant violated|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
    else
        echo "$line"
    fi
done

# The table docs/RELIABILITY.md quotes: totals of this run, per target
# (cov: libFuzzer's edge coverage; corpus: inputs kept in the work corpus).
echo "== summary (${secs}s per target)"
printf '%-8s %12s %8s %6s %7s\n' target execs exec/s cov corpus
printf '%s\n' "${table[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: failing targets: ${failed[*]} (inputs in $build/artifacts/)" >&2
    exit 1
fi
