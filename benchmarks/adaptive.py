"""Adaptive seeds by simulation: the false better/worse rate and the trials saved (README figures).

Each simulated sweep has three placements compared with a reference on paired per-seed
differences (normal noise), looks at 3, 4, ..., 10 seeds with sweep.adaptive's procedure, and
counts the trials run (a placement stops getting seeds once its comparison is decided; the
reference runs as long as any is open) against 10 seeds everywhere. Usage:

    .venv/bin/python benchmarks/adaptive.py [--sweeps 2000]
"""

from __future__ import annotations

import argparse

import numpy as np

from sweep.adaptive import schedule, sequential

SCENARIOS = [  # name, true difference of each placement from the reference (points), noise sd
    ("no difference, noise 1.4", (0.0, 0.0, 0.0), 1.4),
    ("one placement 4 points off, noise 1.4", (4.0, 0.0, 0.0), 1.4),
    ("all three 4 points off, noise 1.4", (4.0, 4.0, 4.0), 1.4),
    ("no difference, noise 0.3", (0.0, 0.0, 0.0), 0.3),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sweeps", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    looks, seeds = schedule(3, 10, 1), np.arange(10)
    pairs = [("a", "ref"), ("b", "ref"), ("c", "ref")]
    print("| scenario | sweeps with a false better/worse call | trials run of 40 | saved |")
    print("|---|---|---|---|")
    for name, effects, sd in SCENARIOS:
        wrong, trials = 0, []
        for _ in range(args.sweeps):
            data = {pair: (seeds, rng.normal(e, sd, 10)) for pair, e in zip(pairs, effects, strict=True)}
            calls = sequential(data, looks, 0.05, 1.0).calls
            truth = dict(zip((p for p, _ in pairs), effects, strict=True))
            wrong += any(c.outcome in ("better", "worse") and truth[c.placement] == 0 for c in calls)
            per = {c.placement: c.seeds for c in calls}
            trials.append(sum(per.values()) + max(per.values()))  # the reference runs to the last look
        mean = float(np.mean(trials))
        print(f"| {name} | {wrong / args.sweeps:.1%} | {mean:.1f} | {1 - mean / 40:.0%} |")


if __name__ == "__main__":
    main()
