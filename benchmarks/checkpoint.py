"""What checkpointing costs a trial: the seed preset with `training.checkpoint_every` 0 (off) and N.

Each round runs the same sweep twice through `run_sweep` on one local Ray (real Ray Tune, real
checkpoints into the sweep's folder, MLflow in a temporary SQLite store), once per setting,
alternating which goes first so drift in the machine's load falls on both. A trial's time is
Tune's `time_total_s` (the run's `duration_s`: build, fit, checkpoints, final evaluation); the
cost is the median trial's time with checkpoints over the median without, and the extra seconds
per checkpoint.

Usage: .venv/bin/python benchmarks/checkpoint.py [--every 5] [--rounds 2] [--cpus 1] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import RESULTS_DIR, ROOT, machine_info

SPEC = ROOT / "examples" / "seed.yaml"
DEFAULT_SETS = ["search.seeds=1"]  # 24 trials of the preset's network, 20 epochs each


def run_once(overrides: list[str], every: int, cpus: int) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    from sweep.results import find_sweep, trial_table
    from sweep.runner import run_sweep
    from sweep.spec import load_spec

    spec = load_spec(str(SPEC), [*overrides, f"training.checkpoint_every={every}"])
    print(f"checkpoint_every={every}: {spec.trial_count} trials ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f"bench-ckpt-{every}-") as tmp:
        started = time.perf_counter()
        result = run_sweep(
            spec, runs_dir=tmp, tracking_uri=f"sqlite:///{tmp}/mlflow.db", report=False, ray_cpus=cpus
        )
        wall = time.perf_counter() - started
        client = MlflowClient(result.tracking_uri)
        table = trial_table(client, find_sweep(client, result.sweep_id))
        left = sorted(str(p.relative_to(tmp)) for p in Path(tmp).glob("*/*/*/checkpoint_*"))
    epochs = spec.training.epochs
    saves = 0 if every == 0 else len([e for e in range(every, epochs, every)])  # none at the last
    return {
        "every": every,
        "wall_s": wall,
        "trials": len(table),
        "finished": int((table["status"] == "FINISHED").sum()),
        "checkpoints_per_trial": saves,
        "trial_s": [float(v) for v in table["duration_s"].dropna()],
        "train_s": [float(v) for v in table["train_time_s"].dropna()],
        "checkpoints_left": left,
        "state": result.state,
    }


def summarise(runs: list[dict[str, Any]], every: int) -> dict[str, Any]:
    off = [t for r in runs if r["every"] == 0 for t in r["trial_s"]]
    on = [t for r in runs if r["every"] == every for t in r["trial_s"]]
    saves = next(r["checkpoints_per_trial"] for r in runs if r["every"] == every)
    median_off, median_on = statistics.median(off), statistics.median(on)
    return {
        "median_trial_s_off": median_off,
        "median_trial_s_on": median_on,
        "cost_ratio": median_on / median_off,
        "cost_pct": 100 * (median_on / median_off - 1),
        "per_checkpoint_s": (median_on - median_off) / saves if saves else None,
        "mean_trial_s_off": statistics.fmean(off),
        "mean_trial_s_on": statistics.fmean(on),
        "trials_each": (len(off), len(on)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--every", type=int, default=5, help="checkpoint_every to measure (default: 5, the default)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of one sweep per setting")
    parser.add_argument("--cpus", type=int, default=1, help="Ray CPUs (1: trials one after another)")
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE", help="spec overrides")
    args = parser.parse_args()
    overrides = DEFAULT_SETS if args.set is None else args.set
    import ray

    # One Ray for every run (run_sweep uses the one this process started): a trial's time is what
    # is compared, and each fresh start is a chance to time out on a loaded machine.
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    runs = []
    for round_ in range(args.rounds):
        order = (0, args.every) if round_ % 2 == 0 else (args.every, 0)
        runs += [run_once(overrides, every, args.cpus) for every in order]
    summary = summarise(runs, args.every)
    print(
        f"median trial {summary['median_trial_s_off']:.3f} s without checkpoints, "
        f"{summary['median_trial_s_on']:.3f} s with checkpoint_every={args.every}: "
        f"{summary['cost_pct']:+.2f}% ({summary['per_checkpoint_s'] or 0:.4f} s a checkpoint)"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"checkpoint-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    report = {"spec": str(SPEC.relative_to(ROOT)), "overrides": overrides, "every": args.every}
    report |= {"cpus": args.cpus, "machine": machine_info(), "summary": summary, "runs": runs}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
