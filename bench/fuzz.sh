#!/bin/bash
# The libFuzzer campaign of docs/benchmarks.md ("Fuzzing"), by hand (not part of CI):
# builds every layer with clang, ASan and libFuzzer's coverage (-Dfuzzing=true) in
# BUILD_DIR, then runs each fuzz target of tests/fuzz/ for RUNS executions, starting
# from a copy of its corpus (the repository's corpus is not touched), one target per
# core at a time. A crash stops that target and leaves its input (crash-*) in
# OUT_DIR/TARGET; turn it into a corpus file under tests/fuzz/corpus/TARGET/ so the
# normal test suite replays it.
#
#   bench/fuzz.sh [--runs N] [--jobs J] [--build DIR] [--out DIR] [TARGET ...]
#
# Prints one line per target (executions, seconds, exec/s, corpus, verdict), then a
# JSON line. Exit status: 0 no finding, 1 a target crashed or failed, 2 usage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=10000000
jobs=2
build=${TMPDIR:-/tmp}/rlfeed-fuzz-build
out=""
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_wire fuzz_json fuzz_record fuzz_spill fuzz_config fuzz_http)
command -v clang > /dev/null || { echo "fuzz.sh: needs clang (apt-get install clang)" >&2; exit 2; }
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/rlfeed-fuzz.XXXXXX")
mkdir -p "$out"
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$root" -Dfuzzing=true -Db_lundef=false \
        --buildtype=debugoptimized > "$out/setup.log"
fi
ninja -C "$build" $(printf 'tests/%s ' "${targets[@]}") > "$out/build.log"

run_one() {
    local t=$1 dir="$out/$1"
    rm -rf "$dir" && mkdir -p "$dir/corpus"
    cp "$root/tests/fuzz/corpus/$t/"* "$dir/corpus/" 2> /dev/null || true
    local t0=$SECONDS rc=0
    (cd "$dir" && "$build/tests/$t" corpus -runs="$runs" -print_final_stats=1 \
        -rss_limit_mb=4096 > log 2>&1) || rc=$?
    local n; n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$dir/log" | grep -o '[0-9]*$' || echo 0)
    local secs=$((SECONDS - t0)); [ $secs -gt 0 ] || secs=1
    local verdict=ok; [ $rc -eq 0 ] || verdict="FAILED (exit $rc, see $dir/log)"
    printf '%-12s %12s executions %6d s %8d exec/s corpus %5d  %s\n' "$t" "$n" "$secs" \
        $((n / secs)) "$(ls "$dir/corpus" | wc -l)" "$verdict" > "$dir/result"
    [ $rc -eq 0 ]
}

for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    run_one "$t" &
done
wait
status=0
for t in "${targets[@]}"; do
    if [ -f "$out/$t/result" ]; then
        cat "$out/$t/result"
        grep -q FAILED "$out/$t/result" && status=1
    else
        echo "$t: no result"
        status=1
    fi
done
printf '{"bench":"fuzz","runs":%s,"date":"%s","results":"%s"}\n' "$runs" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$out"
exit $status
