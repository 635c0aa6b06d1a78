"""Run one spec under the fifo and the asha scheduler: is ASHA faster, and does the same placement win?

The winner under fifo is the placement with the highest mean final val_accuracy over finished
trials. Under asha only trials that ran every epoch count (those ASHA stopped early were judged
worse); if none did, the mean best val_accuracy reached decides.

Usage: .venv/bin/python benchmarks/asha.py examples/seed.yaml [--set training.epochs=30]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import RESULTS_DIR, ROOT, machine_info

SCHEDULERS = ("fifo", "asha")


def best_placement(table: Any, epochs: int, scheduler: str) -> tuple[str | None, dict[str, float], str]:
    """The winning placement, every placement's score, and the rule that scored them."""
    finished = table[table["status"] == "FINISHED"]
    if scheduler == "fifo":
        scores = finished.groupby("placement")["final_val_accuracy"].mean()
        rule = "mean final val_accuracy of finished trials"
    else:
        complete = finished[finished["epochs_completed"] >= epochs]
        if len(complete):
            scores = complete.groupby("placement")["final_val_accuracy"].mean()
            rule = f"mean final val_accuracy of trials that ran all {epochs} epochs"
        else:
            scores = finished.groupby("placement")["best_val_accuracy"].mean()
            rule = "no trial ran every epoch: mean best val_accuracy reached"
    scores = scores.dropna()
    best = str(scores.idxmax()) if len(scores) else None
    return best, {str(k): float(v) for k, v in scores.items()}, rule


def per_trial_costs(finished: Any) -> tuple[float | None, float | None]:
    """A trial's cost as fixed + per-epoch seconds: a least-squares line through the trials'
    own build + fit time (`train_time_s`) against the epochs they ran."""
    import numpy as np

    rows = finished.dropna(subset=["train_time_s", "epochs_completed"])
    if rows["epochs_completed"].nunique() < 2:
        return None, None
    slope, intercept = np.polyfit(rows["epochs_completed"], rows["train_time_s"], 1)
    return float(intercept), float(slope)


def run_once(spec_path: str, overrides: list[str], scheduler: str) -> dict[str, Any]:
    import ray
    from mlflow.tracking import MlflowClient

    from sweep.results import find_sweep, trial_table
    from sweep.runner import run_sweep
    from sweep.spec import load_spec

    spec = load_spec(spec_path, [*overrides, f"strategy.scheduler={scheduler}"])
    print(f"{scheduler}: {spec.trial_count} trials, {spec.training.epochs} epochs ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f"bench-{scheduler}-") as tmp:
        started = time.perf_counter()  # Ray starts inside run_sweep, so its start-up counts
        result = run_sweep(spec, runs_dir=tmp, tracking_uri=f"sqlite:///{tmp}/mlflow.db", progress=None)
        wall = time.perf_counter() - started
        ray.shutdown()
        client = MlflowClient(result.tracking_uri)
        table = trial_table(client, find_sweep(client, result.sweep_id))
    epochs = spec.training.epochs
    best, scores, rule = best_placement(table, epochs, scheduler)
    finished = table[table["status"] == "FINISHED"]
    # What ASHA is for: the single best configuration; its placement, among full-length trials.
    full = finished[finished["epochs_completed"] >= epochs].dropna(subset=["final_val_accuracy"])
    top = full.sort_values("final_val_accuracy", ascending=False).head(1)
    fixed_s, per_epoch_s = per_trial_costs(finished)
    return {
        "scheduler": scheduler,
        "wall_s": wall,
        "trial_fixed_s": fixed_s,
        "trial_per_epoch_s": per_epoch_s,
        "trials": spec.trial_count,
        "finished": len(finished),
        "stopped_early": int((finished["epochs_completed"] < epochs).sum()),
        "epochs_trained": int(table["epochs_completed"].fillna(0).sum()),
        "epochs_full": spec.trial_count * epochs,
        "best_placement": best,
        "top_trial_placement": str(top.placement.iloc[0]) if len(top) else None,
        "top_trial_val_accuracy": float(top.final_val_accuracy.iloc[0]) if len(top) else None,
        "scores": scores,
        "rule": rule,
        "state": result.state,
    }


def load_grace(spec_path: str, overrides: list[str]) -> int:
    from sweep.spec import load_spec

    spec = load_spec(spec_path, overrides)
    return min(spec.strategy.grace_period, spec.training.epochs)


def render(runs: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in (
        "scheduler",
        "wall (s)",
        "finished",
        "stopped early",
        "epochs trained",
        "best placement",
        "top trial",
    ):
        table.add_column(column, justify="left" if column in ("scheduler", "best placement") else "right")
    for r in runs:
        table.add_row(
            r["scheduler"],
            f"{r['wall_s']:.1f}",
            f"{r['finished']}/{r['trials']}",
            str(r["stopped_early"]),
            f"{r['epochs_trained']}/{r['epochs_full']}",
            str(r["best_placement"]),
            f"{r['top_trial_placement']} ({r['top_trial_val_accuracy'] or float('nan'):.4f})",
        )
    scores = Table(title="placement scores")
    scores.add_column("placement")
    for r in runs:
        scores.add_column(r["scheduler"], justify="right")
    for placement in sorted({p for r in runs for p in r["scores"]}):
        cells = [f"{r['scores'][placement]:.4f}" if placement in r["scores"] else "-" for r in runs]
        scores.add_row(placement, *cells)
    console = Console()
    console.width = max(console.width, 110)
    console.print(table)
    console.print(scores)
    for r in runs:
        console.print(f"{r['scheduler']}: {r['rule']}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("spec", help="a spec file, e.g. examples/seed.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="spec override for both runs, e.g. strategy.grace_period=3",
    )
    args = parser.parse_args()
    import ray  # noqa: F401  (imported before timing so the first run does not pay for it)

    runs = [run_once(args.spec, args.set, s) for s in SCHEDULERS]
    fifo, asha = runs
    same = fifo["best_placement"] == asha["best_placement"]
    title = f"{args.spec}: fifo vs asha ({fifo['trials']} trials each)"
    render(runs, title)
    print(
        f"asha wall time: {asha['wall_s'] / fifo['wall_s']:.2f}x fifo's; "
        f"same best placement: {'yes' if same else 'NO'} "
        f"(fifo {fifo['best_placement']}, asha {asha['best_placement']})"
    )
    # What no scheduler can go below: every trial still builds and traces its model. If ASHA stopped
    # every trial at its first rung, the trials would cost N x (fixed + grace x per-epoch).
    fixed, per_epoch = asha["trial_fixed_s"], asha["trial_per_epoch_s"]
    if fixed is not None and per_epoch is not None:
        grace = load_grace(args.spec, args.set)
        epochs = asha["epochs_full"] // asha["trials"]
        floor = (fixed + grace * per_epoch) / (fixed + epochs * per_epoch)
        asha["trial_time_floor_ratio"] = floor
        print(
            f"per trial: {fixed:.2f} s fixed (build, trace) + {per_epoch:.3f} s per epoch; stopping every "
            f"trial at the first rung ({grace} epochs) would still cost {floor:.2f}x the full trials' time"
        )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = RESULTS_DIR / f"asha-{Path(args.spec).stem}-{stamp}.json"
    report = {
        "spec": args.spec,
        "overrides": args.set,
        "same_best_placement": same,
        "machine": machine_info(),
        "runs": runs,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
