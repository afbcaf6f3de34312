#!/bin/bash
# Learning under decide-only load (docs/benchmarks.md, "The learner under decide-only
# load"): starts rlfeedd with its private redis-server (data in a fresh directory under
# $TMPDIR, appendfsync always unless --appendfsync) and bench/pace.ini, and runs
# rlfeed-bench-pace once for each number in flight, each against a fresh daemon; --rounds R
# repeats that. One JSON line per run on stdout. Everything started here is stopped on exit.
#
#   bench/pace_bench.sh [BUILD_DIR] [--seconds S] [--inflight "8 32"] [--rounds R]
#                       [--appendfsync always|everysec]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
build=build
seconds=10
inflight="8 32"
rounds=1
fsync=always
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --inflight) inflight=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --appendfsync) fsync=$2; shift 2 ;;
        -*) echo "usage: $0 [BUILD_DIR] [--seconds S] [--inflight \"8 32\"] [--rounds R]" \
                 "[--appendfsync always|everysec]" >&2
            exit 2 ;;
        *) build=$1; shift ;;
    esac
done
rlfeedd="$root/$build/service/rlfeedd"
rlfeed="$root/$build/tools/rlfeed"
bench="$root/$build/bench/rlfeed-bench-pace"

work=$(mktemp -d "${TMPDIR:-/tmp}/rlfeed-pace.XXXXXX")
daemon_pid=""
cleanup() {
    stop_pids "$daemon_pid"
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

rc=0
for round in $(seq 1 "$rounds"); do
    for n in $inflight; do
        url="ipc://$work/pace.sock"
        rm -rf "$work/data"
        "$rlfeedd" --config "$root/bench/pace.ini" --url "$url" --data-dir "$work/data" \
            --appendfsync "$fsync" 2> "$work/rlfeedd.log" &
        daemon_pid=$!
        wait_ready "$rlfeed" "$url" "$daemon_pid" "$work/rlfeedd.log"
        printf 'round=%s appendfsync=%s load=%s ' "$round" "$fsync" \
            "$(cut -d' ' -f1 /proc/loadavg)"
        "$bench" --url "$url" --inflight "$n" --seconds "$seconds" || rc=1
        kill -TERM "$daemon_pid"
        wait "$daemon_pid" || rc=1
        daemon_pid=""
    done
done
exit $rc
