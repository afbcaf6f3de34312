#!/bin/sh
# The format check of the test command: every C file of the repository must
# be exactly what clang-format makes of it with the committed .clang-format
# (Debian 12's clang-format 14). Prints each file that differs and how to fix
# it; TAP output, so meson counts it as one test.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
if ! command -v clang-format >/dev/null 2>&1; then
    if [ "${TST_REQUIRE_ALL:-0}" = 1 ]; then
        echo "1..1"; echo "not ok 1 - clang-format not found (TST_REQUIRE_ALL=1)"; exit 1
    fi
    echo "1..0 # SKIP clang-format not found"; exit 0
fi
if [ -d .git ] || git rev-parse --git-dir >/dev/null 2>&1; then
    files=$(git ls-files '*.c' '*.h')
else
    files=$(find . -path ./build -prune -o -path './build-*' -prune -o \( -name '*.c' -o -name '*.h' \) -print)
fi
n=0
for f in $files; do
    n=$((n + 1))
done
# One clang-format process for every file (one per file took minutes on a busy
# machine); it names each file that differs in its warnings.
# shellcheck disable=SC2086 # $files is a list of paths without blanks
report=$(clang-format --dry-run -Werror $files 2>&1 >/dev/null)
status=$?
bad=$(printf '%s\n' "$report" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u | tr '\n' ' ')
bad=${bad% }
[ -n "$bad" ] && bad=" $bad"
if [ "$status" != 0 ] && [ -z "$bad" ]; then
    echo "1..1"
    echo "not ok 1 - clang-format failed: $(printf '%s' "$report" | head -n 3)"
    exit 1
fi
echo "1..1"
if [ -n "$bad" ]; then
    echo "not ok 1 - $n files checked; not formatted:$bad"
    echo "# fix with: clang-format -i$bad"
    exit 1
fi
echo "ok 1 - $n files formatted as .clang-format says"
