#!/bin/bash
# replicas_ack 0 against 1: acknowledged feedback throughput and latency on a Redis master
# with one replica, both on loopback ports (docs/benchmarks.md, "replicas_ack"). Starts
# the two redis-servers (appendonly, appendfsync always, data in a fresh directory under
# $TMPDIR), then for each setting rlfeedd with bench/feedback.ini on the master, and runs
# build/tools/rlfeed-bench-feedback with 1, 4 and 16 threads; --rounds R alternates the
# settings R times. Everything started here is stopped on exit.
#
#   bench/replicas_bench.sh [BUILD_DIR] [--seconds S] [--threads "1 4 16"] [--rounds R]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
build=build
seconds=10
threads="1 4 16"
rounds=1
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        -*) echo "usage: $0 [BUILD_DIR] [--seconds S] [--threads \"1 4 16\"] [--rounds R]" >&2
            exit 2 ;;
        *) build=$1; shift ;;
    esac
done
rlfeedd="$root/$build/service/rlfeedd"
rlfeed="$root/$build/tools/rlfeed"
bench="$root/$build/tools/rlfeed-bench-feedback"

work=$(mktemp -d "${TMPDIR:-/tmp}/rlfeed-replicas.XXXXXX")
pids=()
daemon_pid=""
cleanup() {
    stop_pids "$daemon_pid" "${pids[@]}"
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

master=$(free_port)
replica=$(free_port)
mkdir -p "$work/m" "$work/r"
redis-server --port "$master" --bind 127.0.0.1 --dir "$work/m" --appendonly yes \
    --appendfsync always --save "" > "$work/m.log" 2>&1 &
pids+=($!)
redis-server --port "$replica" --bind 127.0.0.1 --dir "$work/r" --appendonly yes \
    --appendfsync always --save "" --replicaof 127.0.0.1 "$master" > "$work/r.log" 2>&1 &
pids+=($!)
deadline=$((SECONDS + 30))
until redis-cli -p "$master" info replication 2> /dev/null | grep -q 'state=online'; do
    if [ $SECONDS -ge $deadline ]; then
        echo "the replica did not come online" >&2
        exit 1
    fi
    sleep 0.1
done

for round in $(seq 1 "$rounds"); do
for ack in 0 1; do
    url="ipc://$work/ack$ack.sock"
    cp "$root/bench/feedback.ini" "$work/ack$ack.ini"
    sed -i "s/^\[server\]$/[server]\nreplicas_ack = $ack/" "$work/ack$ack.ini"
    "$rlfeedd" --config "$work/ack$ack.ini" --url "$url" --redis "tcp://127.0.0.1:$master" \
        2> "$work/ack$ack.log" &
    daemon_pid=$!
    wait_ready "$rlfeed" "$url" "$daemon_pid" "$work/ack$ack.log"
    for t in $threads; do
        printf 'round=%s replicas_ack=%s load=%s ' "$round" "$ack" "$(cut -d' ' -f1 /proc/loadavg)"
        "$bench" --url "$url" --threads "$t" --seconds "$seconds"
    done
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || true
    daemon_pid=""
done
done
