"""The Ray Tune objects a sweep runs: its trainable and its `Tuner`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweep.code_bundle import CodeBundle
from sweep.data import Dataset
from sweep.failures import install_retry_policy
from sweep.recorder import TrialRecorder
from sweep.space import TunePlan
from sweep.spec import SweepSpec
from sweep.tracking import trial_run_name
from sweep.trainable import train_trial


def tune_trainable(
    spec: SweepSpec, data: Dataset, code: tuple[CodeBundle, ...], sweep_dir: Path | None = None
) -> Any:
    """`train_trial` as Tune runs it: the data passed once, the resources each trial asks for."""
    from ray import tune

    # with_parameters puts the arrays in the object store once; trials read them zero-copy.
    fn = tune.with_parameters(
        train_trial, spec=spec, data=data, code=code, sweep_dir=str(sweep_dir) if sweep_dir else None
    )
    return tune.with_resources(
        fn, {"cpu": spec.resources.cpus_per_trial, "gpu": spec.resources.gpus_per_trial}
    )


def build_tuner(
    trainable: Any, spec: SweepSpec, plan: TunePlan, recorder: TrialRecorder, *, name: str, storage_path: Path
) -> Any:
    """The `ray.tune.Tuner` a sweep runs (benchmarks build theirs here too, to measure the same)."""
    from ray import tune

    install_retry_policy()
    return tune.Tuner(
        trainable,
        param_space=plan.param_space,
        tune_config=tune.TuneConfig(
            metric=plan.metric,
            mode=plan.mode,
            search_alg=plan.search_alg,
            scheduler=plan.scheduler,
            num_samples=plan.num_samples,
            max_concurrent_trials=spec.resources.max_concurrent_trials,
            reuse_actors=True,  # TensorFlow is imported once per worker, not per trial
            trial_name_creator=lambda t: f"{trial_run_name(t.config)}-{t.trial_id}",
            trial_dirname_creator=lambda t: t.trial_id,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage_path),
            callbacks=[recorder],
            verbose=0,
            # Retries only for lost workers and nodes (sweep.failures.install_retry_policy).
            failure_config=tune.FailureConfig(max_failures=spec.resources.max_failures),
            # A retry continues from the latest (sweep.trainable.TuneCheckpoints); older ones go.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.resources.keep_checkpoints),
        ),
    )
