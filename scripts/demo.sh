#!/bin/bash
# The demo: a private Redis and rlfeedd, then simulated chatbot traffic that
# shows the policy head learning. Everything started here is stopped on exit.
# Usage: scripts/demo.sh BUILD_DIR [extra `rlfeed sim` options]
# RLFEED_DEMO_CONFIG picks the daemon's config (default examples/demo.ini; a
# relative path is taken from the repository root).
set -euo pipefail
build=${1:-build}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
rlfeedd="$root/$build/service/rlfeedd"
rlfeed="$root/$build/tools/rlfeed"
config=${RLFEED_DEMO_CONFIG:-examples/demo.ini}
case "$config" in
    /*) ;;
    *) config="$root/$config" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/rlfeed-demo.XXXXXX")
url="ipc://$work/rlfeed.sock"
daemon_pid=""
cleanup() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== starting rlfeedd with $config (private redis-server in $work/redis)"
"$rlfeedd" --config "$config" --url "$url" --data-dir "$work/redis" \
    --http-url http://127.0.0.1:0 2> "$work/rlfeedd.log" &
daemon_pid=$!

# Wait for readiness by polling health, with a deadline: rlfeedd listens
# (answering "starting") before it has rebuilt its state.
deadline=$((SECONDS + 30))
until "$rlfeed" health --url "$url" --timeout-ms 500 2> /dev/null |
        grep -Eq '"status": *"(ready|degraded)"'; do
    if ! kill -0 "$daemon_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
        echo "rlfeedd did not become ready:" >&2
        cat "$work/rlfeedd.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "== rlfeedd ready at $url"
http_url=$(grep -o 'http on [^ ]*' "$work/rlfeedd.log" | head -n 1 | cut -d' ' -f3)
[ -z "$http_url" ] || echo "== Prometheus metrics at $http_url/metrics (while the demo runs)"
# The Redis rlfeedd uses (its private one here): the registry commands talk to it.
# Its unix socket and generated password are in the data directory (docs/operations.md);
# the URL travels in the environment, which other users cannot read.
redis_pass=$(awk '$1 == "requirepass" { print $2 }' "$work/redis/redis.conf")
export RLFEED_REDIS="unix://:$redis_pass@$work/redis/redis.sock"
echo "== simulated chatbot traffic. Customers get the production slot (the base model until"
echo "   a promotion) and a canary share the online head, which learns from everything."
echo "   The nightly job (rlfeed promote) runs three times: with no checkpoint or too little"
echo "   data it refuses; once the online head is shown better, production moves to it."
"$rlfeed" sim --url "$url" --promote-at 1000 --promote-at 25000 --promote-at 45000 "$@"
echo "== the audit trail (rlfeed history)"
"$rlfeed" history --policy intents
echo "== daemon stats"
"$rlfeed" stats --url "$url"
echo
echo "== stopping rlfeedd"
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=""
tail -n 4 "$work/rlfeedd.log"
