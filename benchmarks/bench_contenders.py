"""bench.py's contenders: each times one grid its own way, in a child process bench.py spawns.

`RUNNERS` maps a contender's name to its function: `(spec, cores) -> result dict` (wall_s,
finished, peak_rss_mb, val_accuracy, extra). What each contender is: bench.py's docstring.
"""

from __future__ import annotations

import math
import resource
import tempfile
import threading
import time
from typing import Any

from bench_grids import BASE_SPEC, GRIDS


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
