#!/usr/bin/env python3
"""Run `rlfeed bench learn` over datasets x learners x base modes x seeds and
print the markdown table recorded in docs/benchmarks.md.

usage: bench/learning_table.py RLFEED_BINARY DATA_DIR

Seeds 1-5 for every cell; every row but the default runs with --portfolio off.
"""
import json
import statistics
import subprocess
import sys

# The default is the portfolio rlfeedd runs (portfolio = auto); the rest are single heads.
OFF = ["--portfolio", "off"]
CONFIGS = [
    ("default (portfolio auto)", []),
    ("ridge alone (greedy, eps 0.01)", OFF),
    ("ridge + igw (gamma 1000)", OFF + ["--explorer", "igw"]),
    ("ridge + ucb (alpha 0.5)", OFF + ["--explorer", "ucb"]),
    ("iwr (greedy, eps 0.01, lr 0.25)", OFF + ["--learner", "iwr"]),
    ("pg (softmax, eps 0.05, kl 0.3)", OFF + ["--learner", "pg"]),
]
DATASETS = ["digits", "satellite", "dna"]


def run(binary, args):
    out = subprocess.run([binary, "bench", "learn"] + args, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def fmt(xs):
    if len(xs) == 1:
        return "%.3f" % xs[0]
    return "%.3f ± %.3f" % (statistics.mean(xs), statistics.stdev(xs))


def gap_text(gap):
    """Share of the base-to-ceiling gap closed; '-' when the ceiling is not above the base."""
    if any(g != g for g in gap):  # NaN: full-information accuracy <= base accuracy
        return "-"
    return "%.0f%%" % (100 * statistics.mean(gap))


def main():
    if len(sys.argv) != 3 or sys.argv[1].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 0 if sys.argv[1:2] in (["-h"], ["--help"]) else 2
    binary, data = sys.argv[1], sys.argv[2]
    seeds = range(1, 6)
    print("| dataset | base | learner | progressive acc. | base acc. | full-info acc. "
          "| gap closed | updates/s |")
    print("|---|---|---|---|---|---|---|---|")
    for ds in DATASETS:
        for base in ["none", "weak"]:
            for name, extra in CONFIGS:
                rows = [run(binary, ["--data", "%s/%s.csv" % (data, ds), "--seed", str(s),
                                     "--base", base] + extra) for s in seeds]
                acc = [r["progressive_accuracy"] for r in rows]
                b = [r["base_accuracy"] for r in rows]
                full = [r["full_info_accuracy"] for r in rows]
                gap = [(a - x) / (f - x) if f > x else float("nan")
                       for a, x, f in zip(acc, b, full)]
                ups = statistics.mean(r["updates_per_sec"] for r in rows)
                print("| %s | %s | %s | %s | %s | %s | %s | %.0f |" % (
                    ds, base, name, fmt(acc), fmt(b), fmt(full),
                    gap_text(gap), ups), flush=True)


if __name__ == "__main__":
    sys.exit(main())
