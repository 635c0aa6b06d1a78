"""What checkpointing costs a trial of the seed preset (examples/seed.yaml).

Two measurements on the same machine, at the same time, so a loaded machine slows both alike:

1. one checkpoint's cost, through Ray Tune as a trial pays it: a Tune function trainable builds
   the preset's model (`sweep.training.fit.prepare_trial`) and reports `--reports` times,
   alternating a plain `tune.report` and one with a checkpoint (`save_state` into a temporary
   folder, `tune.Checkpoint.from_directory`, Tune copying it into the storage path and keeping
   `num_to_keep=1`); the cost is the median checkpointed report minus the median plain one;
2. a trial's time: `fit_trial` of `--trials` of the preset's trials in this process, no
   checkpoints (build, 20 epochs, final evaluation).

The cost per trial at `checkpoint_every=N` is (checkpoints a trial writes: none at the last epoch)
x (one checkpoint) / (a trial's median time). A direct A/B of whole sweeps is the better test on a
quiet machine but cannot resolve 2% on a shared one (trials of one sweep varied 17-74 s there).

Usage: .venv/bin/python benchmarks/checkpoint.py [--every 5] [--reports 40] [--trials 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from typing import Any

from bench import RESULTS_DIR, ROOT, machine_info

SPEC = ROOT / "examples" / "seed.yaml"
CONFIG = {"placement": "before_activation", "dropout": 0.5, "optimizer": "sgd", "seed": 0}


def _spec() -> Any:
    from sweep.spec import load_spec

    return load_spec(str(SPEC), ["search.seeds=1"])


def _reporter(config: dict[str, Any], spec: Any, data: Any) -> None:
    """A Tune trainable: the preset's model, then plain and checkpointed reports in turn, timed."""
    from ray import tune

    from sweep.data import trial_data
    from sweep.training.checkpoints import save_state
    from sweep.training.fit import prepare_trial

    model = prepare_trial(CONFIG, spec, trial_data(data, spec.dataset, 0))
    plain: list[float] = []
    saved: list[float] = []
    for i in range(config["reports"]):
        metrics = {
            "epoch": i + 1,
            "plain_s": plain[-1] if plain else 0.0,
            "saved_s": saved[-1] if saved else 0.0,
        }
        started = time.perf_counter()
        if i % 2:
            with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as folder:
                save_state(model, folder, epoch=i + 1, trial="bench", history=[{"epoch": i + 1}] * (i + 1))
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
            saved.append(time.perf_counter() - started)
        else:
            tune.report(metrics)
            plain.append(time.perf_counter() - started)
    tune.report({"epoch": config["reports"] + 1, "plain": plain, "saved": saved})


def checkpoint_cost(reports: int) -> dict[str, Any]:
    from ray import tune

    from sweep.data import load_sweep_data

    spec = _spec()
    data = load_sweep_data(spec)
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-storage-") as storage:
        tuner = tune.Tuner(
            tune.with_parameters(_reporter, spec=spec, data=data),
            param_space={"reports": reports},
            run_config=tune.RunConfig(
                storage_path=storage,
                verbose=0,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        last = tuner.fit()[0].metrics
    plain, saved = last["plain"][1:], last["saved"][1:]  # the first of each warms up
    return {
        "plain_report_s": statistics.median(plain),
        "checkpointed_report_s": statistics.median(saved),
        "per_checkpoint_s": statistics.median(saved) - statistics.median(plain),
        "reports": reports,
    }


def trial_time(trials: int) -> dict[str, Any]:
    from sweep.data import load_sweep_data
    from sweep.training.fit import fit_trial

    spec = _spec()
    data = load_sweep_data(spec)
    configs = [
        {**CONFIG, "placement": p, "optimizer": o}
        for p in ("before_activation", "after_dropout", "after_activation", "none")
        for o in ("sgd", "adam")
    ][:trials]
    fit_trial(configs[0], spec, data, lambda _: None)  # warm: TensorFlow's first trace in the process
    times = []
    for config in configs:
        started = time.perf_counter()
        fit_trial(config, spec, data, lambda _: None)
        times.append(time.perf_counter() - started)
    return {"trial_s": times, "median_trial_s": statistics.median(times), "epochs": spec.training.epochs}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--every", type=int, default=5, help="checkpoint_every to price (default: 5, the default)"
    )
    parser.add_argument(
        "--reports", type=int, default=40, help="reports in the Tune trainable (half checkpointed)"
    )
    parser.add_argument(
        "--trials", type=int, default=4, help="preset trials timed in this process (at most 8)"
    )
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    cost = checkpoint_cost(args.reports)
    trial = trial_time(args.trials)
    ray.shutdown()
    saves = len(range(args.every, trial["epochs"], args.every)) if args.every else 0
    pct = 100 * saves * cost["per_checkpoint_s"] / trial["median_trial_s"]
    print(
        f"one checkpoint {cost['per_checkpoint_s'] * 1000:.1f} ms (a plain report "
        f"{cost['plain_report_s'] * 1000:.1f} ms); a preset trial {trial['median_trial_s']:.2f} s; "
        f"checkpoint_every={args.every}: {saves} checkpoints, {pct:.2f}% of the trial"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"checkpoint-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    report = {"spec": str(SPEC.relative_to(ROOT)), "every": args.every, "checkpoints_per_trial": saves}
    report |= {"cost_pct": pct, "machine": machine_info(), "checkpoint": cost, "trial": trial}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
