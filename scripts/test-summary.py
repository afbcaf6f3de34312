#!/usr/bin/env python3
"""Print one 'N passed, N failed' line over the meson test logs given as arguments.

Each test log line is a JSON object with "name" and "result"; OK and EXPECTEDFAIL
count as passed, SKIP as skipped, everything else as failed. Exits 1 if any
failed or no test ran.

A failed test's "not ok" lines and the last lines of its output are printed
just before the summary, so that a log shown only from its end (a CI page)
still says what failed and where the time went.
"""
import json
import sys

TAIL_LINES = 25
NOT_OK_LINES = 10


def failure_excerpt(stdout):
    lines = (stdout or "").splitlines()
    not_ok = [l for l in lines if l.startswith("not ok")][:NOT_OK_LINES]
    tail = lines[-TAIL_LINES:]
    out = []
    for l in not_ok:
        if l not in tail:
            out.append(l)
    if out:
        out.append("...")
    return out + tail


passed = failed = skipped = 0
failures = []
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            res = r.get("result", "")
            if res in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif res == "SKIP":
                skipped += 1
            else:
                failed += 1
                failures.append((r, path))
for r, path in failures:
    print("---- %s (%s, %.0f s), the end of its output:" %
          (r.get("name"), r.get("result"), r.get("duration") or 0))
    for l in failure_excerpt(r.get("stdout")):
        print("  | " + l[:300])
for r, path in failures:
    print("FAILED: %s (%s) in %s" % (r.get("name"), r.get("result"), path))
tail = ", %d skipped" % skipped if skipped else ""
print("%d passed, %d failed%s" % (passed, failed, tail))
sys.exit(1 if failed or passed == 0 else 0)
