"""Time one grid under several contenders, each in its own fresh process, and compare.

Contenders:
  ideal       every trial's bare build + compile + fit in one warm process, summed / cores
  naive       Ray Tune as its docs show it: function trainable, grid_search, MLflowLoggerCallback
  kerastuner  keras_tuner.GridSearch over the same space (sequential, one process)
  sweep       sweep.runner.run_sweep with the product's defaults
  sweep-warm  the same as a driver's second sweep: Ray up and the MLflow store created beforehand
  floor       start-up alone: Ray + Tune + one Keras import per worker, no data, MLflow or model
  sweep:NAME  sweep with extra overrides, from --variant NAME:KEY=VALUE[;KEY=VALUE...]

Usage: .venv/bin/python benchmarks/bench.py --grid seed --contenders ideal,naive,kerastuner,sweep
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
BASE_SPEC = ROOT / "examples" / "seed.yaml"
RESULTS_DIR = ROOT / "benchmarks" / "results"
LOGS_DIR = ROOT / "benchmarks" / "out" / "logs"

# Each grid is examples/seed.yaml plus these overrides.
GRIDS: dict[str, list[str]] = {
    # 3 placements x dropout {0, 0.5} x {sgd, adam} x 1 seed = 12 trials, 20 epochs, batch 16
    "seed": [
        "search.placement=[before_activation, after_activation, after_dropout]",
        "search.dropout=[0.0, 0.5]",
        "search.seeds=1",
    ],
    # 4 placements x dropout {0, 0.25, 0.5} x {sgd, adam} x 5 seeds = 120 trials, 5 epochs
    "large": ["search.seeds=5", "training.epochs=5"],
    # 2 placements x dropout {0.5} x {sgd, adam} x 1 seed = 4 trials, 2 epochs: a smoke test
    "tiny": [
        "search.placement=[before_activation, after_dropout]",
        "search.dropout=[0.5]",
        "search.seeds=1",
        "training.epochs=2",
    ],
}
CONTENDERS = ("ideal", "naive", "kerastuner", "sweep", "sweep-warm", "floor")
DEFAULT_CONTENDERS = ("ideal", "naive", "kerastuner", "sweep")
CHILD_ENV = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
_ENV_KEY = re.compile(r"[A-Z_][A-Z0-9_]*")


def grid_spec(grid: str, overrides: list[str]) -> Any:
    from sweep.spec import load_spec

    return load_spec(BASE_SPEC, [*GRIDS[grid], *overrides])


def trial_key(placement: str, dropout: float, optimizer: str, seed: int) -> str:
    """One trial's identity, the same whichever contender ran it."""
    return f"{placement}|d{float(dropout):g}|{optimizer}|s{int(seed)}"


def own_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class RayWorkerSampler(threading.Thread):
    """Polls the RSS of this process's Ray worker descendants (`ray::...`) every 0.5 s."""

    def __init__(self, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self.pids: set[int] = set()
        self._done = threading.Event()

    def run(self) -> None:
        # psutil is not a dependency of its own here: Ray bundles it in ray/thirdparty_files and
        # puts that folder on sys.path when imported.
        import ray  # noqa: F401, I001
        import psutil

        me = psutil.Process()
        while not self._done.is_set():
            for proc in me.children(recursive=True):
                try:
                    title = " ".join(proc.cmdline())
                    # Workers are titled ray::IDLE or ray::<actor>.<method>; the agents are not workers.
                    if not title.startswith("ray::") or title.split()[0].endswith("Agent"):
                        continue
                    rss = proc.memory_info().rss / (1024 * 1024)
                except psutil.Error:
                    continue  # the worker exited between listing and reading
                self.pids.add(proc.pid)
                self.peak_mb = max(self.peak_mb, rss)
            self._done.wait(self.interval_s)

    def stop(self) -> None:
        self._done.set()
        self.join()


# --- the contenders, each run in a child process ----------------------------------------------


def run_ideal(spec: Any, cores: int) -> dict[str, Any]:
    """Bare fits in one warm process; the wall time is their sum spread over the cores."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    from sweep.data import load_dataset
    from sweep.models import build_model, build_optimizer
    from sweep.space import grid_configs
    from sweep.trial import trial_seed

    data = load_dataset(spec.dataset, image=spec.model.kind == "cnn")
    accuracies: dict[str, float] = {}
    fit_times: list[float] = []
    for config in grid_configs(spec):
        started = time.perf_counter()
        keras.backend.clear_session()
        keras.utils.set_random_seed(trial_seed(config))
        model = build_model(
            spec.model, config["placement"], float(config["dropout"]), data.input_shape, data.n_classes
        )
        model.compile(
            optimizer=build_optimizer(spec.search.optimizers[config["optimizer"]]),
            loss=spec.training.loss,
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
        history = model.fit(
            data.x_train,
            data.y_train,
            batch_size=spec.training.batch_size,
            epochs=spec.training.epochs,
            validation_data=(data.x_val, data.y_val),
            shuffle=True,
            verbose=0,
        )
        fit_times.append(time.perf_counter() - started)
        key = trial_key(config["placement"], config["dropout"], config["optimizer"], trial_seed(config))
        accuracies[key] = float(history.history["val_accuracy"][-1])
    cores_used = max(1, min(cores, len(fit_times)))
    return {
        "wall_s": sum(fit_times) / cores_used,
        "finished": len(fit_times),
        "peak_rss_mb": own_peak_rss_mb(),
        "val_accuracy": accuracies,
        "extra": {"fit_sum_s": sum(fit_times), "cores_used": cores_used, "fit_s": fit_times},
    }


def _naive_train_fn(spec: Any) -> Any:
    def train_fn(config: dict[str, Any]) -> None:
        import keras
        from ray import tune

        from sweep.data import load_dataset
        from sweep.models import build_model, build_optimizer

        data = load_dataset(spec.dataset, image=spec.model.kind == "cnn")
        keras.utils.set_random_seed(config["seed"])
        model = build_model(
            spec.model, config["placement"], config["dropout"], data.input_shape, data.n_classes
        )
        model.compile(
            optimizer=build_optimizer(spec.search.optimizers[config["optimizer"]]),
            loss=spec.training.loss,
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )

        class ReportToTune(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                tune.report({k: float(v) for k, v in (logs or {}).items()})

        model.fit(
            data.x_train,
            data.y_train,
            batch_size=spec.training.batch_size,
            epochs=spec.training.epochs,
            validation_data=(data.x_val, data.y_val),
            verbose=0,
            callbacks=[ReportToTune()],
        )

    return train_fn


def run_naive(spec: Any, cores: int) -> dict[str, Any]:
    """Ray Tune written the way its docs show: defaults everywhere, MLflow through its callback."""
    import ray
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    search = spec.search
    with tempfile.TemporaryDirectory(prefix="bench-naive-") as tmp:
        sampler = RayWorkerSampler()
        sampler.start()
        started = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False)
        tuner = tune.Tuner(
            _naive_train_fn(spec),
            param_space={
                "placement": tune.grid_search(list(search.placement)),
                "dropout": tune.grid_search([float(d) for d in search.dropout]),
                "optimizer": tune.grid_search(list(search.optimizers)),
                "seed": tune.grid_search(list(range(search.seeds))),
            },
            tune_config=tune.TuneConfig(metric=spec.strategy.metric, mode=spec.strategy.mode),
            run_config=tune.RunConfig(
                storage_path=tmp,  # not ~/ray_results; otherwise Ray's defaults
                callbacks=[
                    MLflowLoggerCallback(
                        tracking_uri=f"sqlite:///{tmp}/mlflow.db", experiment_name="bench-naive"
                    )
                ],
            ),
        )
        grid = tuner.fit()
        wall = time.perf_counter() - started
        sampler.stop()
        ray.shutdown()
        results = list(grid)  # read before the temporary storage goes
    accuracies = {}
    for result in results:
        if result.error is None and "val_accuracy" in result.metrics:
            c = result.config
            accuracies[trial_key(c["placement"], c["dropout"], c["optimizer"], c["seed"])] = float(
                result.metrics["val_accuracy"]
            )
    return {
        "wall_s": wall,
        "finished": sum(1 for r in results if r.error is None),
        "peak_rss_mb": sampler.peak_mb,
        "val_accuracy": accuracies,
        "extra": {"worker_processes_seen": len(sampler.pids), "rss_source": "psutil sampling"},
    }


def run_kerastuner(spec: Any, cores: int) -> dict[str, Any]:
    """keras_tuner.GridSearch over the same axes; it runs trials one after another."""
    import keras
    import keras_tuner

    from sweep.data import load_dataset
    from sweep.models import build_model, build_optimizer

    data = load_dataset(spec.dataset, image=spec.model.kind == "cnn")
    search = spec.search

    class BatchNormPlacement(keras_tuner.HyperModel):
        def build(self, hp: Any) -> Any:
            placement = hp.Choice("placement", list(search.placement))
            dropout = hp.Choice("dropout", [float(d) for d in search.dropout])
            optimizer = hp.Choice("optimizer", list(search.optimizers))
            seed = hp.Choice("seed", list(range(search.seeds)))
            keras.utils.set_random_seed(seed)  # KerasTuner clears the session before build
            model = build_model(spec.model, placement, dropout, data.input_shape, data.n_classes)
            model.compile(
                optimizer=build_optimizer(search.optimizers[optimizer]),
                loss=spec.training.loss,
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            )
            return model

    accuracies: dict[str, float] = {}

    class Grid(keras_tuner.GridSearch):
        # The oracle keeps only the best epoch's value; the histories have the last one.
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            histories = super().run_trial(trial, *args, **kwargs)
            v = trial.hyperparameters.values
            key = trial_key(v["placement"], v["dropout"], v["optimizer"], v["seed"])
            accuracies[key] = float(histories[-1].history["val_accuracy"][-1])
            return histories

        def _configure_tensorboard_dir(self, callbacks: Any, trial: Any, execution: int = 0) -> None:
            # KerasTuner 1.4.8 imports tensorboard here on every trial, even with no TensorBoard
            # callback; TensorFlow 2.21 no longer installs it. There is nothing to configure.
            pass

    with tempfile.TemporaryDirectory(prefix="bench-kt-") as tmp:
        started = time.perf_counter()
        tuner = Grid(
            BatchNormPlacement(),
            objective="val_accuracy",
            executions_per_trial=1,
            overwrite=True,
            directory=tmp,
            project_name="bench",
        )
        tuner.search(
            data.x_train,
            data.y_train,
            epochs=spec.training.epochs,
            batch_size=spec.training.batch_size,
            validation_data=(data.x_val, data.y_val),
            verbose=0,
        )
        wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "finished": len(accuracies),
        "peak_rss_mb": own_peak_rss_mb(),
        "val_accuracy": accuracies,
        "extra": {"oracle_trials": len(tuner.oracle.trials)},
    }


def _turnaround_overheads(client: Any, parent: Any, cores: int) -> list[float]:
    """Per trial, the driver's start-to-end time minus the trial's own build + fit time.

    `parent` is the sweep's `find_sweep` record. The first trial on each worker is left out: it
    also imports TensorFlow (start-up, not per-trial cost). Start and end are the child run's
    MLflow times, stamped by the driver.
    """
    runs = client.search_runs(
        [parent.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.parent_run_id}'", max_results=50_000
    )
    spans = sorted(
        (r.info.start_time, r.info.end_time, r.data.metrics.get("train_time_s"))
        for r in runs
        if r.info.status == "FINISHED" and r.info.end_time and "train_time_s" in r.data.metrics
    )
    return [(end - start) / 1000 - train for start, end, train in spans[cores:]]


def _time_sweep(spec: Any, cores: int, warm: bool) -> dict[str, Any]:
    import ray
    from mlflow.tracking import MlflowClient

    from sweep.results import find_sweep, trial_table
    from sweep.runner import run_sweep
    from sweep.spec import load_spec

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        if warm:
            # What a long-lived driver (the REST service, a notebook) has on its second sweep: Ray
            # already up and the MLflow store already created. Tune still starts fresh workers.
            tiny = load_spec(BASE_SPEC, GRIDS["tiny"])
            run_sweep(tiny, runs_dir=tmp, tracking_uri=uri, progress=None, ray_cpus=cores, report=False)
        sampler = RayWorkerSampler()
        sampler.start()
        started = time.perf_counter()
        # Ray starts inside run_sweep (beside the MLflow store, as `sweep run` does), on --cores CPUs.
        result = run_sweep(spec, runs_dir=tmp, tracking_uri=uri, progress=None, ray_cpus=cores)
        wall = time.perf_counter() - started
        sampler.stop()
        ray.shutdown()
        client = MlflowClient(result.tracking_uri)
        record = find_sweep(client, result.sweep_id)
        table = trial_table(client, record)
        turnaround = _turnaround_overheads(client, record, cores)
    finished = table[table["status"] == "FINISHED"]
    accuracies = {
        trial_key(r.placement, r.dropout, r.optimizer, r.seed): float(r.final_val_accuracy)
        for r in finished.itertuples()
        if not math.isnan(r.final_val_accuracy)
    }
    return {
        "wall_s": wall,
        "finished": len(finished),
        "peak_rss_mb": float(table["peak_rss_mb"].max()),
        "val_accuracy": accuracies,
        "extra": {
            "engine_wall_s": result.wall_time_s,
            "timings": result.timings,
            # Everything the engine adds per trial beyond building and fitting the model, start-up
            # included: (trial phase x cores - the trials' own build + fit time) / trials.
            "per_trial_overhead_s": (
                result.timings.get("trials_s", math.nan) * min(cores, len(finished))
                - float(finished["train_time_s"].sum())
            )
            / max(1, len(finished)),
            # Steady state: scheduling, reporting, logging and actor reuse between two trials.
            "per_trial_turnaround_overhead_s": (sum(turnaround) / len(turnaround)) if turnaround else None,
            "per_trial_turnaround_overhead_max_s": max(turnaround) if turnaround else None,
            "train_time_sum_s": float(finished["train_time_s"].sum()),
            "state": result.state,
            "sampled_peak_rss_mb": sampler.peak_mb,
            "worker_processes_seen": len(sampler.pids),
            "rss_source": "peak_rss_mb metric",
        },
    }


def run_sweep_contender(spec: Any, cores: int) -> dict[str, Any]:
    """The product: run_sweep with its defaults, Ray start-up included in the wall time."""
    return _time_sweep(spec, cores, warm=False)


def run_sweep_warm(spec: Any, cores: int) -> dict[str, Any]:
    """run_sweep as a second sweep in the same driver: Ray and the MLflow store already there."""
    return _time_sweep(spec, cores, warm=True)


def run_floor(spec: Any, cores: int) -> dict[str, Any]:
    """The start-up any Ray Tune + Keras sweep pays: Ray, Tune, one Keras import per worker.

    Ray starts as run_sweep starts it, and Tune runs one trial per core that only imports Keras:
    no data, no MLflow, no model. Against the ideal it shows how much of a wall-time budget
    (1.2x = 20% of the ideal) is gone before the first epoch can start.
    """
    import ray
    from ray import tune

    from sweep.cluster import init_ray

    def import_only(config: dict[str, Any]) -> None:
        from sweep.trainable import import_keras

        import_keras()
        tune.report({"imported": 1})

    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        sampler = RayWorkerSampler()
        sampler.start()
        started = time.perf_counter()
        init_ray(None, cores)
        ray_s = time.perf_counter() - started
        results = tune.Tuner(
            tune.with_resources(import_only, {"cpu": 1}),
            param_space={"worker": tune.grid_search(list(range(cores)))},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(storage_path=tmp, verbose=0),
        ).fit()
        wall = time.perf_counter() - started
        sampler.stop()
        ray.shutdown()
    return {
        "wall_s": wall,
        "finished": sum(1 for r in results if r.error is None),
        "peak_rss_mb": sampler.peak_mb,
        "val_accuracy": {},
        "extra": {"ray_init_s": ray_s, "tune_and_keras_import_s": wall - ray_s, "trials_run": cores},
    }


RUNNERS = {
    "ideal": run_ideal,
    "naive": run_naive,
    "kerastuner": run_kerastuner,
    "sweep": run_sweep_contender,
    "sweep-warm": run_sweep_warm,
    "floor": run_floor,
}


def child(args: argparse.Namespace) -> None:
    """Run one contender and write its numbers as one JSON line on the real stdout."""
    # Ray, TensorFlow and KerasTuner all print to stdout; keep it for the result line alone.
    sys.stdout.flush()
    result_out: TextIO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    spec = grid_spec(args.grid, args.set)
    result = RUNNERS[args.only](spec, args.cores)
    result.update({"contender": args.label or args.only, "trials": spec.trial_count})
    result_out.write(json.dumps(result) + "\n")
    result_out.flush()


# --- the parent: spawn, compare, render --------------------------------------------------------


def split_assignments(items: list[str]) -> tuple[list[str], dict[str, str]]:
    """`key.path=value` go to the spec; `UPPER_CASE=value` go to the environment."""
    sets, env = [], {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE (got {item!r})")
        if _ENV_KEY.fullmatch(key.strip()):
            env[key.strip()] = value
        else:
            sets.append(item)
    return sets, env


def plan_contenders(args: argparse.Namespace) -> list[dict[str, Any]]:
    """What to spawn: name, runner, extra spec overrides and environment."""
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    if args.check_identical:
        names = ["ideal", *(n for n in names if n != "ideal")]
        if "sweep" not in names:
            names.append("sweep")
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        raise SystemExit(f"--contenders: unknown {', '.join(unknown)} (allowed: {', '.join(CONTENDERS)})")
    plans = [{"label": n, "runner": n, "set": [], "env": {}} for n in names]
    for variant in args.variant:
        name, sep, rest = variant.partition(":")
        if not sep or not name:
            raise SystemExit(f"--variant: expected NAME:KEY=VALUE[;KEY=VALUE...] (got {variant!r})")
        sets, env = split_assignments([p for p in rest.split(";") if p.strip()])
        plans.append({"label": f"sweep:{name}", "runner": "sweep", "set": sets, "env": env})
    return plans


def spawn(plan: dict[str, Any], args: argparse.Namespace, log_path: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--only",
        plan["runner"],
        "--label",
        plan["label"],
        "--grid",
        args.grid,
        "--cores",
        str(args.cores),
    ]
    for item in [*args.set, *plan["set"]]:
        command += ["--set", item]
    env = {**os.environ, **CHILD_ENV, **args.env_vars, **plan["env"]}
    env.pop("MLFLOW_TRACKING_URI", None)  # every contender writes to its own temporary store
    started = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    process_s = time.perf_counter() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
        where = log_path.relative_to(ROOT)
        print(f"  {plan['label']} failed (exit {proc.returncode}); the end of {where}:", file=sys.stderr)
        print("    " + "\n    ".join(tail), file=sys.stderr)
        return {"contender": plan["label"], "error": f"exit {proc.returncode}", "log": str(log_path)}
    result: dict[str, Any] = json.loads(lines[-1])
    result.update({"process_s": process_s, "log": str(log_path), "set": plan["set"], "env": plan["env"]})
    return result


def compare(results: list[dict[str, Any]]) -> None:
    """Add trials/min, the ratio to ideal and the largest val_accuracy gap to ideal."""
    ideal = next((r for r in results if r["contender"] == "ideal" and "error" not in r), None)
    for r in results:
        if "error" in r:
            continue
        r["trials_per_min"] = 60 * r["finished"] / r["wall_s"] if r["wall_s"] else None
        r["ratio_to_ideal"] = r["wall_s"] / ideal["wall_s"] if ideal else None
        if ideal and r is not ideal:
            common = sorted(set(r["val_accuracy"]) & set(ideal["val_accuracy"]))
            gaps = [abs(r["val_accuracy"][k] - ideal["val_accuracy"][k]) for k in common]
            r["max_abs_diff_vs_ideal"] = max(gaps) if gaps else None
            r["trials_compared"] = len(common)


def _proc_field(path: str, name: str) -> str | None:
    """The value of `name: value` in a /proc file (Linux), if there."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "ram_gb": round(int(mem_kb.split()[0]) / 1024**2, 1) if mem_kb else None,
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{
            p: version(p)
            for p in ("tensorflow", "keras", "ray", "mlflow", "keras-tuner", "scikit-learn", "numpy")
        },
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(results: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=title,
        caption="max |Δ acc|: largest gap to ideal's final val_accuracy over the trials both finished",
    )
    for column in (
        "contender",
        "trials",
        "wall (s)",
        "trials/min",
        "x ideal",
        "peak RSS/worker (MB)",
        "max |Δ acc|",
    ):
        table.add_column(column, justify="left" if column == "contender" else "right")
    for r in results:
        if "error" in r:
            table.add_row(r["contender"], "-", f"[red]{r['error']}[/red]", "-", "-", "-", "-")
            continue
        table.add_row(
            r["contender"] if r.get("round", 1) == 1 else f"{r['contender']} (round {r['round']})",
            f"{r['finished']}/{r['trials']}",
            _fmt(r["wall_s"], ".1f"),
            _fmt(r["trials_per_min"], ".1f"),
            _fmt(r["ratio_to_ideal"], ".2f"),
            _fmt(r["peak_rss_mb"], ".0f"),
            _fmt(r.get("max_abs_diff_vs_ideal"), ".4f"),
        )
    console = Console()
    console.width = max(console.width, 110)  # not squeezed to 80 columns when piped to a file
    console.print(table)


def summarise_rounds(results: list[dict[str, Any]]) -> None:
    """Each contender's ratio to the same round's ideal, round by round, and the median."""
    import statistics

    labels = dict.fromkeys(r["contender"] for r in results if r["contender"] != "ideal")
    for label in labels:
        ratios = [r["ratio_to_ideal"] for r in results if r["contender"] == label and r.get("ratio_to_ideal")]
        if ratios:
            each = ", ".join(f"{x:.2f}" for x in ratios)
            print(f"{label}: x ideal by round {each}; median {statistics.median(ratios):.2f}")


def parent(args: argparse.Namespace) -> int:
    spec = grid_spec(args.grid, args.set)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    plans = plan_contenders(args)
    title = (
        f"grid {args.grid}: {spec.trial_count} trials ({spec.describe_count()}), "
        f"{spec.training.epochs} epochs, batch {spec.training.batch_size}, "
        f"{spec.dataset.n_samples} rows; {args.cores} cores"
    )
    print(title, file=sys.stderr)
    machine = machine_info()  # the load average before the runs: is the machine quiet?
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    # Rounds interleave the contenders (ideal, sweep, ideal, sweep, ...) so that each ratio compares
    # runs made minutes apart: this VM's speed drifts by up to 1.8x over an hour.
    for round_no in range(1, args.rounds + 1):
        this_round = []
        for plan in plans:
            name = plan["label"].replace(":", "-") + (f"-r{round_no}" if args.rounds > 1 else "")
            print(f"  running {plan['label']} (round {round_no}) ...", file=sys.stderr, flush=True)
            result = spawn(plan, args, LOGS_DIR / f"{args.grid}-{stamp}-{name}.log")
            result["round"] = round_no
            if "error" not in result:
                print(f"  {plan['label']}: {result['wall_s']:.1f} s", file=sys.stderr, flush=True)
            this_round.append(result)
        compare(this_round)
        results.extend(this_round)
    render(results, title)
    if args.rounds > 1:
        summarise_rounds(results)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{args.grid}-{stamp}.json"
    report = {
        "grid": args.grid,
        "title": title,
        "trials": spec.trial_count,
        "epochs": spec.training.epochs,
        "batch_size": spec.training.batch_size,
        "overrides": [*GRIDS[args.grid], *args.set],
        "env": args.env_vars,
        "cores": args.cores,
        "started": stamp,
        "machine": {**machine, "load_average_after": os.getloadavg()},
        "contenders": results,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    if args.check_identical:
        sweep = next((r for r in results if r["contender"] == "sweep"), {})
        diff = sweep.get("max_abs_diff_vs_ideal")
        ok = diff is not None and diff <= args.tolerance
        print(
            f"check-identical: sweep vs ideal, max |Δ final val_accuracy| = {_fmt(diff, '.6f')} over "
            f"{sweep.get('trials_compared', 0)} trials (tolerance {args.tolerance:g}): "
            f"{'OK' if ok else 'FAILED'}"
        )
        return 0 if ok else 1
    return 0 if all("error" not in r for r in results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grid", choices=sorted(GRIDS), default="seed")
    parser.add_argument(
        "--contenders",
        default=",".join(DEFAULT_CONTENDERS),
        help=f"comma-separated, from {', '.join(CONTENDERS)}",
    )
    parser.add_argument("--cores", type=int, default=2, help="CPUs given to Ray, and the ideal's divisor")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every contender this many times, interleaved"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="spec override for every contender, e.g. training.epochs=10",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment variable for every contender, e.g. TUNE_RESULT_BUFFER_LENGTH=10",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[;...]",
        help="an extra sweep contender; UPPER_CASE keys are environment variables, "
        "dotted keys spec overrides, e.g. 'spe1:training.steps_per_execution=1'",
    )
    parser.add_argument(
        "--check-identical",
        action="store_true",
        help="run ideal and sweep, and fail if their final val_accuracy differ",
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.0, help="largest |Δ val_accuracy| --check-identical accepts"
    )
    parser.add_argument("--only", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cores < 1:
        parser.error(f"--cores: must be >= 1 (got {args.cores})")
    if args.rounds < 1:
        parser.error(f"--rounds: must be >= 1 (got {args.rounds})")
    if args.only:
        child(args)
        return 0
    not_env, args.env_vars = split_assignments(args.env)
    if not_env:
        parser.error(f"--env: expected NAME=VALUE with an upper-case NAME (got {', '.join(not_env)})")
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
