# Shared by the bench scripts (sourced, not run).

# wait_ready RLFEED URL PID LOG: poll `rlfeed health` at URL until rlfeedd (PID) says ready
# or degraded (not merely listening: it answers "starting" while it restores); on its exit
# or after 30 s print LOG and exit 1.
wait_ready() {
    local rlfeed=$1 url=$2 pid=$3 log=$4
    local deadline=$((SECONDS + 30))
    until "$rlfeed" health --url "$url" --timeout-ms 500 2> /dev/null |
            grep -Eq '"status": *"(ready|degraded)"'; do
        if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            echo "rlfeedd did not become ready:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# stop_pids PID...: SIGTERM each and reap it (empty arguments and gone processes are skipped).
stop_pids() {
    local p
    for p in "$@"; do
        [ -n "$p" ] || continue
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
