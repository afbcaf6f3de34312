#!/bin/sh
# The kill -9 soak of docs/operations.md, by hand: rlfeedd with its default
# configuration under acknowledged feedback load, its private redis-server
# killed with SIGKILL ten times, while `dd ... oflag=direct` rewrites 2000 MB
# in a loop beside it (and the test's own writer cycles over 2000 MB with
# fdatasync). Prints the test's TAP; the summary line starts "# 10 kills".
#
#   bench/kill_soak.sh [BUILD_DIR] [test options, e.g. --appendfsync everysec]
#   (--disk-mb M: the test's writer over M MB instead of 2000; 0: none)
set -eu
case "${1:-}" in
    -h | --help)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac
build=build
case "${1:-}" in
    -*) ;;
    ?*) build=$1; shift ;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rlfeed-soak.XXXXXX")
ddpid=
cleanup() {
    touch "$tmp/stop"
    [ -n "$ddpid" ] && wait "$ddpid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
(
    while [ ! -e "$tmp/stop" ]; do
        dd if=/dev/zero of="$tmp/big" bs=1M count=2000 oflag=direct 2>/dev/null || break
    done
) &
ddpid=$!
RLFEEDD="$build/service/rlfeedd" "$build/tests/test_redis_kill" --kills 10 --disk-mb 2000 "$@"
