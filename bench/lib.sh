# bench/lib.sh - what the bench scripts share (sourced, not run).
#
#   bench_build "WATCHED PATHS" TARGET...
#       builds TARGETs in build-bench/ (RelWithDebInfo, no sanitizers) when
#       one is missing from build-bench/bin or a file under WATCHED PATHS is
#       newer than the first one
#   bench_run SECONDS COMMAND...
#       runs COMMAND bounded by SECONDS (timeout), and stops it (TERM, then
#       KILL after 5 s) however the script ends

bench_build() {
    local watched=$1 first=build-bench/bin/$2 t stale=
    shift
    for t in "$@"; do [ -x "build-bench/bin/$t" ] || stale=1; done
    # shellcheck disable=SC2086
    if [ -n "$stale" ] || [ -n "$(find $watched -newer "$first" -print -quit)" ]; then
        cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEL_SANITIZE=OFF >/dev/null
        cmake --build build-bench --target "$@" -j"$(nproc)" >/dev/null
    fi
}

BENCH_PID=
bench_cleanup() {
    local rc=$?
    if [ -n "$BENCH_PID" ]; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$BENCH_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BENCH_PID" 2>/dev/null || true
    fi
    exit $rc
}

bench_run() {
    local secs=$1
    shift
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    timeout -k 5 "$secs" "$@" &
    BENCH_PID=$!
    wait "$BENCH_PID"
}
