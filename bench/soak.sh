#!/bin/bash
# The soak of issue 13, by hand (not part of CI): a private redis-server and
# rlfeedd (examples/demo.ini, serve = production with a canary) under mixed
# simulated traffic (`rlfeed sim`: decide, feedback, conversations off) for
# a while, sampling rlfeedd's RSS, open file descriptors, write-queue depth,
# pending decisions and decisions served every SAMPLE seconds. Everything
# started here is stopped on exit.
#
#   bench/soak.sh [BUILD_DIR] [--minutes M] [--sample-s S] [--clients C]
#
# Prints one line per sample, then one JSON line: first, last and largest
# RSS and fd count, RSS growth over the last two thirds of the run (after
# warm-up), the largest queue depth, and the decisions served.
set -euo pipefail
build=build
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    build=$1
    shift
fi
minutes=60
sample_s=60
clients=4
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes=$2; shift 2 ;;
        --sample-s) sample_s=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        *) echo "usage: bench/soak.sh [BUILD_DIR] [--minutes M] [--sample-s S] [--clients C]" >&2
           exit 2 ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
rlfeedd="$root/$build/service/rlfeedd"
rlfeed="$root/$build/tools/rlfeed"
work=$(mktemp -d "${TMPDIR:-/tmp}/rlfeed-soak.XXXXXX")
url="ipc://$work/rlfeed.sock"
daemon_pid=""
load_pid=""
cleanup() {
    touch "$work/stop"
    if [ -n "$load_pid" ]; then
        kill -TERM "$load_pid" 2>/dev/null || true
        wait "$load_pid" 2>/dev/null || true
    fi
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$rlfeedd" --config "$root/examples/demo.ini" --url "$url" --data-dir "$work/redis" \
    --http-url http://127.0.0.1:0 2> "$work/rlfeedd.log" &
daemon_pid=$!
wait_ready "$rlfeed" "$url" "$daemon_pid" "$work/rlfeedd.log"

# The load: rounds of `rlfeed sim` with a new seed each (so new event ids), until told to stop.
# The running sim gets the subshell's SIGTERM too, so nothing outlives the script.
(
    sim_pid=""
    trap '[ -z "$sim_pid" ] || kill -TERM "$sim_pid" 2>/dev/null; exit 0' TERM
    seed=1
    while [ ! -e "$work/stop" ]; do
        "$rlfeed" sim --url "$url" --n 20000 --clients "$clients" --seed "$seed" \
            > /dev/null 2>> "$work/sim.log" &
        sim_pid=$!
        wait "$sim_pid" || true
        sim_pid=""
        seed=$((seed + 1))
    done
) &
load_pid=$!

sample() {
    local rss fds stats
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status")
    fds=$(ls "/proc/$daemon_pid/fd" | wc -l)
    stats=$("$rlfeed" stats --url "$url" --timeout-ms 5000 || echo '{}')
    python3 -c '
import json, sys
s = json.loads(sys.argv[3])
p = s.get("policies", {}).get("intents", {})
q = s.get("storage", {}).get("queue_depth", -1)
print(json.dumps({"t_s": int(sys.argv[4]), "rss_kb": int(sys.argv[1]), "fds": int(sys.argv[2]),
                  "queue_depth": q, "pending": p.get("join", {}).get("pending", -1),
                  "decisions": p.get("decisions", -1), "updates": p.get("updates", -1)}))
' "$rss" "$fds" "$stats" "$1"
}

start=$SECONDS
end=$((start + minutes * 60))
: > "$work/samples"
while [ $SECONDS -lt $end ]; do
    sample $((SECONDS - start)) | tee -a "$work/samples"
    sleep "$sample_s"
    kill -0 "$daemon_pid" || { echo "rlfeedd died" >&2; cat "$work/rlfeedd.log" >&2; exit 1; }
done
sample $((SECONDS - start)) | tee -a "$work/samples"
python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rss = [r["rss_kb"] for r in rows]
fds = [r["fds"] for r in rows]
third = len(rows) // 3
print(json.dumps({"soak": "rlfeedd", "minutes": float(sys.argv[2]), "samples": len(rows),
                  "rss_kb": {"first": rss[0], "last": rss[-1], "max": max(rss),
                             "after_warmup": rss[third], "growth_after_warmup_pct":
                             round(100.0 * (rss[-1] - rss[third]) / rss[third], 2)},
                  "fds": {"first": fds[0], "last": fds[-1], "max": max(fds)},
                  "queue_depth_max": max(r["queue_depth"] for r in rows),
                  "decisions": rows[-1]["decisions"], "updates": rows[-1]["updates"]}))
' "$work/samples" "$minutes"
