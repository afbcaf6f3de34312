#!/bin/bash
# Acknowledged feedback on one Redis, on a Redis Cluster of 1 master and of 3 masters
# (docs/benchmarks.md, "Redis Cluster"; docs/scaling.md). Each Redis runs on a loopback
# port with appendonly yes and the given appendfsync, data in a fresh directory under
# $TMPDIR; a cluster of one master gets every slot by CLUSTER ADDSLOTSRANGE, one of three is
# made by redis-cli --cluster create (no replicas). rlfeedd serves six policies bench0..5
# like bench/feedback.ini's "bench" (on 3 masters they fall 2, 2 and 2), and
# rlfeed-bench-feedback runs 1, 4 and 16 threads spread over them. With --instances
# "1 2 3", each setup runs with 1, 2 and 3 rlfeedd instances, instance k serving the
# policies bench<i> with i mod n = k (and the load generator's threads going to the owner
# of their policy). With --shared on, every instance serves all six policies (shared = on:
# instance 0, started first, owns them; the others follow) and thread t goes to instance
# t mod n (rlfeed-bench-feedback --any-instance). --rounds R repeats everything R times.
# Everything started here is stopped on exit.
#
#   bench/cluster_bench.sh [BUILD_DIR] [--seconds S] [--threads "1 4 16"] [--rounds R]
#                          [--appendfsync always|everysec] [--setups "single c1 c3"]
#                          [--instances "1"] [--standby on]   (on: fenced writes)
#                          [--shared on]
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
instances="1"
standby=off
shared=off
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --appendfsync) fsync=$2; shift 2 ;;
        --setups) setups=$2; shift 2 ;;
        --instances) instances=$2; shift 2 ;;
        --standby) standby=$2; shift 2 ;;
        --shared) shared=$2; shift 2 ;;
        -*) echo "usage: $0 [BUILD_DIR] [--seconds S] [--threads \"1 4 16\"] [--rounds R]" \
                 "[--appendfsync always|everysec] [--setups \"single c1 c3\"]" \
                 "[--instances \"1 2 3\"] [--standby on] [--shared on]" >&2
            [ "$1" = --help ] && exit 0
            exit 2 ;;
        *) build=$1; shift ;;
    esac
done
rlfeedd="$root/$build/service/rlfeedd"
rlfeed="$root/$build/tools/rlfeed"
bench="$root/$build/tools/rlfeed-bench-feedback"

work=$(mktemp -d "${TMPDIR:-/tmp}/rlfeed-cluster-bench.XXXXXX")
redis_pids=()
daemon_pids=()
stop_daemons() {
    stop_pids "${daemon_pids[@]}"
    daemon_pids=()
}
stop_redis() {
    stop_pids "${redis_pids[@]}"
    redis_pids=()
}
cleanup() {
    stop_daemons
    stop_redis
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# start_redis NAME [cluster]: a redis-server on a free port (its bus port free too), in
# $port. Not in a subshell: its pid must reach redis_pids, or it is never stopped.
start_redis() {
    local name=$1 cluster=${2:-}
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

# setup NAME: start the Redis of setup NAME; rlfeedd's --redis URL in $redis_url.
setup() {
    case "$1" in
        single)
            start_redis r0
            redis_url="tcp://127.0.0.1:$port" ;;
        c1)
            start_redis c1 cluster
            redis-cli -p "$port" cluster addslotsrange 0 16383 > /dev/null
            wait_cluster "$port"
            redis_url="cluster://127.0.0.1:$port" ;;
        c3)
            local a b c
            start_redis c3a cluster
            a=$port
            start_redis c3b cluster
            b=$port
            start_redis c3c cluster
            c=$port
            redis-cli --cluster create "127.0.0.1:$a" "127.0.0.1:$b" "127.0.0.1:$c" \
                --cluster-replicas 0 --cluster-yes > "$work/create.log" 2>&1
            wait_cluster "$a" "$b" "$c"
            redis_url="cluster://127.0.0.1:$a,127.0.0.1:$b,127.0.0.1:$c" ;;
    esac
}

# config N K: the configuration of instance K of N (the policies bench<i>, i mod N = K).
config() {
    local n=$1 k=$2 f="$work/bench-$1-$2.ini"
    {
        printf '[server]\nsnapshot_interval_ms = 60000\ninstance_id = bench-%s-%s\n' "$n" "$k"
        printf 'standby = %s\nshared = %s\n' "$standby" "$shared"
        for i in 0 1 2 3 4 5; do
            if [ "$shared" = on ] || [ $((i % n)) -eq "$k" ]; then
                printf '[policy bench%d]\ndim = 4\nactions = a0, a1, a2, a3\n' "$i"
                printf 'window_ms = 3600000\n'
                [ "$shared" = on ] && printf 'backward_window_ms = 5000\n'
                printf '[signal bench%d.resolved]\nkind = flag\n' "$i"
            fi
        done
    } > "$f"
    echo "$f"
}

for round in $(seq 1 "$rounds"); do
for s in $setups; do
for n in $instances; do
    setup "$s"
    urls=""
    for k in $(seq 0 $((n - 1))); do
        url="ipc://$work/$s-$n-$k.sock"
        "$rlfeedd" --config "$(config "$n" "$k")" --url "$url" --redis "$redis_url" \
            --http-url "http://127.0.0.1:0" 2> "$work/$s-$n-$k.log" &
        daemon_pids+=($!)
        wait_ready "$rlfeed" "$url" "$!" "$work/$s-$n-$k.log"
        urls="${urls:+$urls,}$url"
    done
    for t in $threads; do
        printf 'round=%s setup=%s appendfsync=%s standby=%s shared=%s load=%s ' "$round" "$s" \
            "$fsync" "$standby" "$shared" "$(cut -d' ' -f1 /proc/loadavg)"
        any=()
        [ "$shared" = on ] && any=(--any-instance)
        "$bench" --url "$urls" --threads "$t" --seconds "$seconds" --policies 6 "${any[@]}"
    done
    stop_daemons
    stop_redis
    rm -rf "${work:?}"/c1 "${work:?}"/c3? "${work:?}"/r0
done
done
done
