#!/bin/bash
# Acknowledged feedback on one Redis, on a Redis Cluster of 1 master and of 3 masters
# (docs/benchmarks.md, "Redis Cluster"; docs/scaling.md). Each Redis runs on a loopback
# port with appendonly yes and the given appendfsync, data in a fresh directory under
# $TMPDIR; a cluster of one master gets every slot by CLUSTER ADDSLOTSRANGE, one of three is
# made by redis-cli --cluster create (no replicas). rlfeedd serves six policies bench0..5
# like bench/feedback.ini's "bench" (on 3 masters they fall 2, 2 and 2), and
# rlfeed-bench-feedback runs 1, 4 and 16 threads spread over them. --rounds R repeats the
# three setups R times. Everything started here is stopped on exit.
#
#   bench/cluster_bench.sh [BUILD_DIR] [--seconds S] [--threads "1 4 16"] [--rounds R]
#                          [--appendfsync always|everysec] [--setups "single c1 c3"]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
build=build
seconds=10
threads="1 4 16"
rounds=1
fsync=always
setups="single c1 c3"
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --appendfsync) fsync=$2; shift 2 ;;
        --setups) setups=$2; shift 2 ;;
        -*) echo "usage: $0 [BUILD_DIR] [--seconds S] [--threads \"1 4 16\"] [--rounds R]" \
                 "[--appendfsync always|everysec] [--setups \"single c1 c3\"]" >&2
            exit 2 ;;
        *) build=$1; shift ;;
    esac
done
rlfeedd="$root/$build/service/rlfeedd"
rlfeed="$root/$build/tools/rlfeed"
bench="$root/$build/tools/rlfeed-bench-feedback"

work=$(mktemp -d "${TMPDIR:-/tmp}/rlfeed-cluster-bench.XXXXXX")
redis_pids=()
daemon_pid=""
stop_redis() {
    for p in "${redis_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    redis_pids=()
}
cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    stop_redis
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_redis NAME [cluster]: a redis-server on a free port (its bus port free too); echo it.
start_redis() {
    local name=$1 cluster=${2:-} port
    while :; do
        port=$(free_port)
        [ "$port" -lt 55000 ] && break
    done
    mkdir -p "$work/$name"
    local extra=()
    if [ -n "$cluster" ]; then
        extra=(--cluster-enabled yes --cluster-config-file "$work/$name/nodes.conf")
    fi
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work/$name" --appendonly yes \
        --appendfsync "$fsync" --save "" "${extra[@]}" > "$work/$name.log" 2>&1 &
    redis_pids+=($!)
    local deadline=$((SECONDS + 20))
    until redis-cli -p "$port" ping 2> /dev/null | grep -q PONG; do
        if [ $SECONDS -ge $deadline ]; then
            echo "redis-server $name did not start" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "$port"
}

cluster_ok() {
    redis-cli -p "$1" cluster info 2> /dev/null | grep -q 'cluster_state:ok'
}

wait_cluster() {
    local deadline=$((SECONDS + 30))
    for p in "$@"; do
        until cluster_ok "$p"; do
            if [ $SECONDS -ge $deadline ]; then
                echo "the cluster did not come up" >&2
                exit 1
            fi
            sleep 0.1
        done
    done
}

# setup NAME: start the Redis of setup NAME; echo rlfeedd's --redis URL.
setup() {
    case "$1" in
        single)
            echo "tcp://127.0.0.1:$(start_redis r0)" ;;
        c1)
            local p
            p=$(start_redis c1 cluster)
            redis-cli -p "$p" cluster addslotsrange 0 16383 > /dev/null
            wait_cluster "$p"
            echo "cluster://127.0.0.1:$p" ;;
        c3)
            local a b c
            a=$(start_redis c3a cluster)
            b=$(start_redis c3b cluster)
            c=$(start_redis c3c cluster)
            redis-cli --cluster create "127.0.0.1:$a" "127.0.0.1:$b" "127.0.0.1:$c" \
                --cluster-replicas 0 --cluster-yes > "$work/create.log" 2>&1
            wait_cluster "$a" "$b" "$c"
            echo "cluster://127.0.0.1:$a,127.0.0.1:$b,127.0.0.1:$c" ;;
    esac
}

config="$work/bench6.ini"
{
    printf '[server]\nsnapshot_interval_ms = 60000\n'
    for i in 0 1 2 3 4 5; do
        printf '[policy bench%d]\ndim = 4\nactions = a0, a1, a2, a3\nwindow_ms = 3600000\n' "$i"
        printf '[signal bench%d.resolved]\nkind = flag\n' "$i"
    done
} > "$config"

for round in $(seq 1 "$rounds"); do
for s in $setups; do
    redis_url=$(setup "$s")
    url="ipc://$work/$s.sock"
    "$rlfeedd" --config "$config" --url "$url" --redis "$redis_url" 2> "$work/$s-d.log" &
    daemon_pid=$!
    wait_ready "$rlfeed" "$url" "$daemon_pid" "$work/$s-d.log"
    for t in $threads; do
        printf 'round=%s setup=%s appendfsync=%s load=%s ' "$round" "$s" "$fsync" \
            "$(cut -d' ' -f1 /proc/loadavg)"
        "$bench" --url "$url" --threads "$t" --seconds "$seconds" --policies 6
    done
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || true
    daemon_pid=""
    stop_redis
    rm -rf "${work:?}"/c1 "${work:?}"/c3? "${work:?}"/r0
done
done
