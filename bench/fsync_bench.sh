#!/bin/bash
# appendfsync always vs everysec: acknowledged feedback throughput and latency
# (docs/benchmarks.md). For each setting, starts rlfeedd with its private
# redis-server (data in a fresh directory under $TMPDIR) and bench/feedback.ini,
# runs build/tools/rlfeed-bench-feedback with 1, 4 and 16 threads, stops it;
# --rounds R repeats that R times, alternating the settings, so that a
# machine whose load drifts affects both alike (report the medians).
# With --dd, `dd if=/dev/zero bs=1M count=2000 oflag=direct` runs in a loop
# beside it (a disk another process keeps busy). Everything started here is
# stopped on exit.
#
#   bench/fsync_bench.sh [BUILD_DIR] [--seconds S] [--threads "1 4 16"] [--rounds R] [--dd]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
build=build
seconds=10
threads="1 4 16"
rounds=1
dd_load=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --dd) dd_load=1; shift ;;
        -*) echo "usage: $0 [BUILD_DIR] [--seconds S] [--threads \"1 4 16\"] [--rounds R] [--dd]" >&2
            exit 2 ;;
        *) build=$1; shift ;;
    esac
done
rlfeedd="$root/$build/service/rlfeedd"
rlfeed="$root/$build/tools/rlfeed"
bench="$root/$build/tools/rlfeed-bench-feedback"

work=$(mktemp -d "${TMPDIR:-/tmp}/rlfeed-fsync.XXXXXX")
daemon_pid=""
dd_pid=""
cleanup() {
    stop_pids "$daemon_pid"
    touch "$work/stop"
    if [ -n "$dd_pid" ]; then
        wait "$dd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ "$dd_load" = 1 ]; then
    (
        while [ ! -e "$work/stop" ]; do
            dd if=/dev/zero of="$work/big" bs=1M count=2000 oflag=direct 2>/dev/null || break
        done
    ) &
    dd_pid=$!
fi

for round in $(seq 1 "$rounds"); do
for mode in always everysec; do
    url="ipc://$work/$mode.sock"
    rm -rf "$work/$mode"
    "$rlfeedd" --config "$root/bench/feedback.ini" --url "$url" --data-dir "$work/$mode" \
        --appendfsync "$mode" 2> "$work/$mode.log" &
    daemon_pid=$!
    wait_ready "$rlfeed" "$url" "$daemon_pid" "$work/$mode.log"
    for t in $threads; do
        printf 'round=%s appendfsync=%s dd=%s load=%s ' "$round" "$mode" "$dd_load" \
            "$(cut -d' ' -f1 /proc/loadavg)"
        "$bench" --url "$url" --threads "$t" --seconds "$seconds"
    done
    kill -TERM "$daemon_pid"
    wait "$daemon_pid"
    daemon_pid=""
done
done
