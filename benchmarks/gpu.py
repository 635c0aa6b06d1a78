"""Trials per minute on one GPU: 1, 2 and 4 trials sharing it (resources.gpus_per_trial 1, 0.5,
0.25), each in float32 and with training.mixed_precision.

Every configuration is one sweep of the same spec through `sweep.runner.run_sweep`, on one local
Ray started here with one GPU (the machine's first) and --cpus CPUs; Ray's start-up is left out,
Tune's worker start-up is not. Trials per minute = finished trials / the sweep's trial phase. Each
trial's child run says what it trained on (`trial.device`), and the table shows it.

Exits 2, saying so, when TensorFlow sees no GPU. `--cpu` is a dry run of the same code path on a
machine without one (the tests use it): Ray is told of one GPU, which the trials share exactly as
they would a real one (Ray hands out its id), while TensorFlow finds none and trains on the CPU
(the device reads `cpu`). Its figures say nothing about a GPU; on a machine with a GPU it is refused.

Usage:
  .venv/bin/python benchmarks/gpu.py                                # cnn-digits, 6 sweeps
  .venv/bin/python benchmarks/gpu.py --spec examples/seed.yaml --set training.epochs=5
  .venv/bin/python benchmarks/gpu.py --fractions 0.25 --precision mixed
  .venv/bin/python benchmarks/gpu.py --cpu --spec examples/quick.yaml --out /tmp/gpu-dry
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import RESULTS_DIR, ROOT, machine_info

DEFAULT_SPEC = "examples/cnn-digits.yaml"
PRECISIONS = {"float32": (False,), "mixed": (True,), "both": (False, True)}


def visible_gpus() -> list[str]:
    """The names of the GPUs TensorFlow sees in this process (none: an empty list)."""
    import tensorflow as tf

    return [
        str(tf.config.experimental.get_device_details(gpu).get("device_name") or gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]


def start_ray(cpus: int) -> None:
    """A local Ray of one GPU: the machine's first, or (dry run) one that only Ray knows of."""
    import logging

    import ray

    ray.init(
        address="local",
        num_cpus=cpus,
        num_gpus=1,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        object_store_memory=256 * 1024 * 1024,
    )


def run_once(spec_path: str, overrides: list[str], fraction: float, mixed: bool) -> dict[str, Any]:
    """One sweep at `fraction` of the GPU per trial, mixed precision or not: its figures."""
    from mlflow.tracking import MlflowClient

    from sweep.results import find_sweep, trial_table
    from sweep.runner import run_sweep
    from sweep.spec import load_spec
    from sweep.store.layout import NODE_TAGS

    settings = [f"resources.gpus_per_trial={fraction}", f"training.mixed_precision={str(mixed).lower()}"]
    spec = load_spec(spec_path, [*overrides, *settings])
    at_once = int(1 / fraction + 1e-9)  # trials that fit on the GPU together
    label = f"{fraction:g} GPU/trial ({at_once} at once), {'mixed' if mixed else 'float32'}"
    print(f"{label}: {spec.trial_count} trials, {spec.training.epochs} epochs ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        started = time.perf_counter()
        result = run_sweep(spec, runs_dir=tmp, tracking_uri=f"sqlite:///{tmp}/mlflow.db", progress=None)
        wall = time.perf_counter() - started
        client = MlflowClient(result.tracking_uri)
        table = trial_table(client, find_sweep(client, result.sweep_id))
        gpu_ids = {
            client.get_run(run_id).data.tags.get(NODE_TAGS["gpu_ids"], "") for run_id in table["run_id"]
        }
    finished = table[table["status"] == "FINISHED"]
    trials_s = float(result.timings.get("trials_s", wall))
    return {
        "label": label,
        "gpus_per_trial": fraction,
        "mixed_precision": mixed,
        "state": result.state,
        "trials": spec.trial_count,
        "finished": len(finished),
        "wall_s": wall,
        "trials_s": trials_s,
        "trials_per_min": 60 * len(finished) / trials_s if trials_s > 0 else None,
        "mean_train_time_s": float(finished["train_time_s"].mean()) if len(finished) else None,
        "mean_final_val_accuracy": float(finished["final_val_accuracy"].mean()) if len(finished) else None,
        "devices": sorted({str(d) for d in table["device"]}),
        "gpu_ids": sorted(gpu_ids),  # Ray's, as each trial's run records them
        "timings": result.timings,
    }


def render(runs: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    columns = (
        "configuration",
        "finished",
        "trial phase (s)",
        "trials/min",
        "train s/trial",
        "val acc",
        "device",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("configuration", "device") else "right")
    for r in runs:
        table.add_row(
            r["label"],
            f"{r['finished']}/{r['trials']}",
            f"{r['trials_s']:.1f}",
            f"{r['trials_per_min']:.1f}" if r["trials_per_min"] is not None else "-",
            f"{r['mean_train_time_s']:.2f}" if r["mean_train_time_s"] is not None else "-",
            f"{r['mean_final_val_accuracy']:.4f}" if r["mean_final_val_accuracy"] is not None else "-",
            ", ".join(r["devices"]),
        )
    console = Console()
    console.width = max(console.width, 120)
    console.print(table)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--spec", default=DEFAULT_SPEC, help=f"the sweep every configuration runs ({DEFAULT_SPEC})"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="spec override, repeatable"
    )
    parser.add_argument(
        "--fractions", default="1,0.5,0.25", help="gpus_per_trial values, comma-separated (1,0.5,0.25)"
    )
    parser.add_argument(
        "--precision", choices=sorted(PRECISIONS), default="both", help="float32, mixed or both"
    )
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs given to Ray (all)")
    parser.add_argument(
        "--cpu", action="store_true", help="dry run on the CPU: no GPU needed, no GPU figures"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder of the result file")
    args = parser.parse_args(argv)
    try:
        args.fractions = [float(f) for f in args.fractions.split(",")]
    except ValueError:
        parser.error(f"--fractions: comma-separated numbers, e.g. 1,0.5,0.25 (got {args.fractions!r})")
    if not all(0 < f <= 1 for f in args.fractions):
        parser.error(f"--fractions: each must be > 0 and <= 1, one GPU's share (got {args.fractions})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gpus = visible_gpus()
    if not args.cpu and not gpus:
        print(
            "benchmarks/gpu.py: TensorFlow sees no GPU on this machine, so there is nothing to measure "
            "(not run). --cpu runs the same code path on the CPU as a dry run.",
            file=sys.stderr,
        )
        return 2
    if args.cpu and gpus:
        print(
            f"benchmarks/gpu.py: --cpu is a dry run for a machine without a GPU; this one has {gpus[0]}",
            file=sys.stderr,
        )
        return 2
    import ray

    start_ray(args.cpus)
    try:
        runs = [
            run_once(args.spec, args.set, fraction, mixed)
            for mixed in PRECISIONS[args.precision]
            for fraction in args.fractions
        ]
    finally:
        ray.shutdown()
    where = "dry run on the CPU (no GPU)" if args.cpu else f"on {gpus[0]}"
    render(runs, f"{args.spec}: trials per minute, {where}")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"gpu-{Path(args.spec).stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    report = {
        "spec": args.spec,
        "overrides": args.set,
        "dry_run_on_cpu": args.cpu,
        "gpu": gpus[0] if gpus else None,
        "cpus": args.cpus,
        "machine": machine_info(),
        "runs": runs,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0 if all(r["state"] == "finished" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
