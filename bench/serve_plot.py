#!/usr/bin/python3
"""Plot `rlfeed bench serve` results: p99 (solid) and p50 (dashed) latency
against throughput, one panel per kind (decide, pair, push), one colour per
series (transport, dim, appendfsync), rlfeedd (circles) against its ceiling
(squares); the points of a series are its in-flight counts, joined in order.

    build/tools/rlfeed bench serve ... | tail -n 1 > serve.json
    bench/serve_plot.py serve.json docs/img/serve.png   (Debian python3 + python3-matplotlib)

The input is the JSON object `rlfeed bench serve` prints as its last line (or
a file whose last non-empty line is that object). Needs python3-matplotlib.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KINDS = [("decide", "decide"),
         ("pair", "decide + acknowledged feedback"),
         ("push", "PUSH feedback")]


def load(path):
    with open(path, encoding="utf-8") as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    if not lines:
        sys.exit(f"{path}: empty")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as e:
        sys.exit(f"{path}: the last line is not JSON: {e}")


def series(points, kind):
    """{(transport, dim, fsync): [points sorted by inflight]} of one kind."""
    out = {}
    for p in points:
        if p["kind"] != kind:
            continue
        fsync = p["appendfsync"] if kind == "pair" else ""
        out.setdefault((p["transport"], p["dim"], fsync), []).append(p)
    for v in out.values():
        v.sort(key=lambda p: p["inflight"])
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: serve_plot.py RESULTS.json OUT.png")
    doc = load(sys.argv[1])
    kinds = [k for k in KINDS if any(p["kind"] == k[0] for p in doc["points"])]
    if not kinds:
        sys.exit(f"{sys.argv[1]}: no points")
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.2 * len(kinds), 5.2), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (kind, title) in zip(axes[0], kinds):
        for i, (key, pts) in enumerate(sorted(series(doc["points"], kind).items())):
            colour = colours[i % len(colours)]
            name = f"{key[0]} d{key[1]}" + (f" {key[2]}" if key[2] else "")
            for side, marker in (("rlfeedd", "o"), ("ceiling", "s")):
                x = [p[side]["per_s"] for p in pts]
                ax.plot(x, [p[side]["p99_ms"] for p in pts], marker=marker, color=colour,
                        linestyle="-", label=f"{name} {side}")
                ax.plot(x, [p[side]["p50_ms"] for p in pts], marker=marker, color=colour,
                        linestyle="--", alpha=0.45, markersize=4)
                for p in pts:
                    ax.annotate(str(p["inflight"]), (p[side]["per_s"], p[side]["p99_ms"]),
                                textcoords="offset points", xytext=(3, 3), fontsize=7,
                                color=colour)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("operations per second")
        ax.set_ylabel("latency, ms (p99 solid, p50 dashed)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="best")
    fig.suptitle(f"rlfeed bench serve, {doc.get('date', '')}: rlfeedd (o) vs raw ceiling (s); "
                 f"labels: requests in flight; medians of {doc.get('runs', 1)} runs of "
                 f"{doc.get('seconds', '?')} s", fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
