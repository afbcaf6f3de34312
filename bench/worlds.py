#!/usr/bin/env python3
"""Synthetic classification worlds for tuning learning defaults without the
held-out sets: the shapes the shipped data lacks (many classes and few
features, heavy class imbalance, nonlinear boundaries, few rows).

    python3 bench/worlds.py OUTDIR [--seed S]

writes OUTDIR/NAME.csv (header, then label and features) for every world and
prints their names. Pure Python, deterministic for a given seed.
"""
import math
import os
import random
import sys


def gauss_mixture(rng, n, k, d, clusters, spread, sep, priors=None, integer=False):
    """k classes, each a mixture of @clusters Gaussian blobs in d dimensions."""
    centers = [[[rng.uniform(-sep, sep) for _ in range(d)] for _ in range(clusters)]
               for _ in range(k)]
    scales = [[rng.uniform(0.5, 1.5) * spread for _ in range(d)] for _ in range(k)]
    w = priors or [1.0] * k
    rows = []
    for _ in range(n):
        y = rng.choices(range(k), weights=w)[0]
        c = centers[y][rng.randrange(clusters)]
        x = [c[j] + rng.gauss(0.0, scales[y][j]) for j in range(d)]
        if integer:
            x = [float(round(3.0 * v)) for v in x]
        rows.append((y, x))
    return rows


def axis_rules(rng, n, d, priors):
    """Labels from nested axis-aligned thresholds (tree-like, skewed), as
    measurements of a process with a few rare states."""
    k = len(priors)
    rows = []
    # each class occupies a box on two features; the common class everywhere else
    boxes = []
    for y in range(1, k):
        f1, f2 = rng.sample(range(d), 2)
        lo1, lo2 = rng.uniform(-2, 1), rng.uniform(-2, 1)
        boxes.append((y, f1, lo1, lo1 + rng.uniform(0.5, 1.5), f2, lo2, lo2 + rng.uniform(0.5, 1.5)))
    want = [int(p * n) for p in priors]
    want[0] += n - sum(want)
    have = [0] * k
    while sum(have) < n:
        x = [rng.gauss(0.0, 1.0) for _ in range(d)]
        y = 0
        for (c, f1, a1, b1, f2, a2, b2) in boxes:
            if a1 <= x[f1] < b1 and a2 <= x[f2] < b2:
                y = c
                break
        if have[y] >= want[y]:
            if y != 0:
                continue
            # the common class: rejection keeps the rare boxes rare
            continue
        have[y] += 1
        x = [v + rng.gauss(0.0, 0.05) for v in x]
        rows.append((y, x))
        if y != 0 and have[y] == want[y]:
            pass
        # rare classes are hard to hit by chance: plant them directly
        for (c, f1, a1, b1, f2, a2, b2) in boxes:
            if have[c] < want[c] and rng.random() < 0.5:
                z = [rng.gauss(0.0, 1.0) for _ in range(d)]
                z[f1] = rng.uniform(a1, b1)
                z[f2] = rng.uniform(a2, b2)
                if all(not (a1_ <= z[g1] < b1_ and a2_ <= z[g2] < b2_)
                       for (c_, g1, a1_, b1_, g2, a2_, b2_) in boxes if c_ < c):
                    have[c] += 1
                    rows.append((c, z))
    rng.shuffle(rows)
    return rows[:n]


def rings(rng, n, k, d):
    """k classes as concentric shells in the first three features plus noise
    features: no linear separator exists."""
    rows = []
    for _ in range(n):
        y = rng.randrange(k)
        r = 1.0 + y + rng.gauss(0.0, 0.3)
        v = [rng.gauss(0.0, 1.0) for _ in range(3)]
        nv = math.sqrt(sum(t * t for t in v)) or 1.0
        x = [r * t / nv for t in v] + [rng.gauss(0.0, 1.0) for _ in range(d - 3)]
        rows.append((y, x))
    return rows


WORLDS = {
    # many classes, few features, each class several blobs (letter-like)
    "many26": lambda rng: gauss_mixture(rng, 20000, 26, 16, 3, 1.0, 3.0, integer=True),
    # 11 classes, 10 features, under a thousand rows (vowel-like)
    "small11": lambda rng: gauss_mixture(rng, 990, 11, 10, 2, 0.8, 2.0),
    # 4 overlapping classes, 18 features, few rows (vehicle-like)
    "overlap4": lambda rng: gauss_mixture(rng, 846, 4, 18, 2, 1.2, 1.5),
    # large and heavily imbalanced, tree-like boundaries (shuttle-like)
    "skew7": lambda rng: axis_rules(rng, 58000, 9,
                                    [0.786, 0.154, 0.056, 0.0015, 0.0012, 0.0003, 0.0002]),
    # nonlinear shells
    "rings5": lambda rng: rings(rng, 8000, 5, 12),
    # imbalanced blobs, 5 classes, 14 features
    "imbal5": lambda rng: gauss_mixture(rng, 12000, 5, 14, 2, 1.0, 1.6,
                                        priors=[0.6, 0.25, 0.1, 0.04, 0.01]),
}


def main():
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 0 if sys.argv[1:2] in (["-h"], ["--help"]) else 2
    out = sys.argv[1]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--seed" else 7
    os.makedirs(out, exist_ok=True)
    for name, make in WORLDS.items():
        rng = random.Random(f"{name}:{seed}")
        rows = make(rng)
        d = len(rows[0][1])
        with open(os.path.join(out, name + ".csv"), "w") as f:
            f.write("label," + ",".join(f"f{j}" for j in range(d)) + "\n")
            for y, x in rows:
                f.write(str(y) + "," + ",".join(f"{v:.4f}" for v in x) + "\n")
        print(name, len(rows), d, len({y for y, _ in rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
