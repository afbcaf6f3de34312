#!/usr/bin/env python3
"""Print one 'N passed, N failed' line over the meson test logs given as arguments.

Each test log line is a JSON object with "name" and "result"; OK and EXPECTEDFAIL
count as passed, SKIP as skipped, everything else as failed. Exits 1 if any
failed or no test ran.
"""
import json
import sys

passed = failed = skipped = 0
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
                print("FAILED: %s (%s) in %s" % (r.get("name"), res, path))
tail = ", %d skipped" % skipped if skipped else ""
print("%d passed, %d failed%s" % (passed, failed, tail))
sys.exit(1 if failed or passed == 0 else 0)
