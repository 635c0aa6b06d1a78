"""The verdict's error rates through the whole path, by simulation (figures for docs/statistics.md).

Simulated trial tables (tests/unit/simulated_sweeps.py: seed effects at an intra-seed correlation
of 0, 0.3 and 0.5, one cell three times as noisy as the others, 5% failed trials, 30% of trials
stopped early by ASHA) go through `analyse()`; a sweep counts as wrong when its printed verdict
claims a direction (better or worse, overall, "slightly" or in a cell) the truth does not have.
Under "null" no placement has an effect; under "4 points" after_dropout is 4 points worse in
every cell and the others have none: power is the share of sweeps that call it worse (overall
or in every cell). First, the coverage of one
comparison's nominal 95% interval on vectorised paired differences (100,000 draws a row). Usage:

    .venv/bin/python benchmarks/calibration.py [--sweeps 400] [--seeds 6] [--coverage-only]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))  # the tests' simulator
from simulated_sweeps import Design, directional_claims, false_claims, simulate

from sweep.analysis import analyse

EFFECT = {"after_dropout": -4.0}


def found_worse(analysis, placement: str = "after_dropout") -> bool:  # type: ignore[no-untyped-def]
    """Called worse overall, or in every cell where the effect was said by cell."""
    return (placement, "none", "worse") in directional_claims(analysis)


def run(design: Design, sweeps: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """(share of sweeps with a false directional claim, share finding EFFECT, mean estimated ICC)."""
    wrong = found = 0
    iccs = []
    for _ in range(sweeps):
        trials, curves = simulate(design, rng)
        analysis = analyse(trials, curves)
        wrong += false_claims(analysis, design.effects)
        found += found_worse(analysis)
        if math.isfinite(analysis.intra_seed_correlation):
            iccs.append(analysis.intra_seed_correlation)
    return wrong / sweeps, found / sweeps, float(np.mean(iccs)) if iccs else math.nan


def coverage(seeds: int, cells: int, icc: float, sims: int, rng: np.random.Generator) -> tuple[float, float]:
    """Miss rates of a nominal 95% interval for one comparison's mean difference: (per-seed means
    with seeds - 1 df, as the analysis does; every pair as a unit, as before issue 20)."""
    tau, sd = math.sqrt(icc), math.sqrt(1 - icc)  # total variance 1 per difference
    diffs = rng.normal(0, tau, (sims, seeds, 1)) + rng.normal(0, sd, (sims, seeds, cells))
    means = diffs.mean(axis=2)
    t_seed = stats.t.ppf(0.975, seeds - 1)
    half = t_seed * means.std(axis=1, ddof=1) / math.sqrt(seeds)
    miss_seed = float(np.mean(np.abs(means.mean(axis=1)) > half))
    flat = diffs.reshape(sims, -1)
    n = flat.shape[1]
    half_pair = stats.t.ppf(0.975, n - 1) * flat.std(axis=1, ddof=1) / math.sqrt(n)
    miss_pair = float(np.mean(np.abs(flat.mean(axis=1)) > half_pair))
    return miss_seed, miss_pair


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sweeps", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--coverage-only", action="store_true", help="only the fast coverage table")
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    print("| seeds x cells | ICC | miss rate, seed as unit | miss rate, pair as unit |")
    print("|---|---|---|---|")
    for seeds, cells in ((3, 6), (6, 4), (8, 4)):
        for icc in (0.0, 0.1, 0.3, 0.5):
            seed_miss, pair_miss = coverage(seeds, cells, icc, 100_000, rng)
            print(f"| {seeds} x {cells} | {icc:g} | {seed_miss:.1%} | {pair_miss:.1%} |")
    print()
    if args.coverage_only:
        return
    print(
        "| condition | seeds | ICC | sweeps | false better/worse (\u00b1 1 MC SE) "
        "| found the 4-point effect | mean ICC estimate |"
    )
    print("|---|---|---|---|---|---|---|")
    started = time.time()
    for name, effects, seeds in (("null", {}, args.seeds), ("4 points", EFFECT, 8)):
        for icc in (0.0, 0.3, 0.5):
            design = Design(seeds=seeds, icc=icc, effects=effects)
            wrong, found, mean_icc = run(design, args.sweeps, rng)
            se = math.sqrt(max(wrong * (1 - wrong), 1e-12) / args.sweeps)
            power = f"{found:.1%}" if effects else "—"
            print(
                f"| {name} | {seeds} | {icc:g} | {args.sweeps} | {wrong:.1%} \u00b1 {se:.1%} | {power} "
                f"| {mean_icc:.2f} |",
                flush=True,
            )
    print(f"\n{time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
