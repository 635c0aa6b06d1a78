"""What a trial is: its configuration, the key that names it across attempts, its run's status.

A trial's configuration travels as a dict in Ray Tune (`from_tune` / `to_tune`) and as its child
run's params in MLflow (`to_params` / `from_params`): this module is the one place that turns
either back into a `TrialConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from sweep.spec import SweepSpec

SEED_KEY = "seed"
RATE_KEY = "learning_rate"  # a block's learning rate, in configurations that list their trials
DRAWN_RATE_PREFIX = "learning_rate."  # + an optimizer label: TPE's draw from that optimizer's range
REPEAT_KEY = "__trial_index__"  # set by ray.tune.search.Repeater on each repeat of a suggestion
CONFIRM_SEED = 1000  # per_placement re-runs use seeds from here: fresh, never seen in tuning


class RunStatus(StrEnum):
    """The status of an MLflow run (a sweep's parent run or a trial's child run)."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


RAN: frozenset[str] = frozenset({RunStatus.FINISHED, RunStatus.FAILED})
"""Trials that ran to their end: another look of an adaptive sweep does not run them again.

KILLED is not among them: the sweep stopped such a trial, and a resume runs it again."""

ENDED: frozenset[str] = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED})
"""Runs that are over, whatever ended them: each is one event of the service's event stream."""


class Phase(StrEnum):
    """A per_placement sweep's two kinds of trial (other sweeps record no phase)."""

    TUNING = "tuning"  # searching a placement's own best block
    CONFIRMATION = "confirmation"  # a placement's best block re-run on fresh seeds: what the verdict compares


def trial_seed(config: Mapping[str, Any]) -> int:
    """The seed of a trial, whichever search made its configuration."""
    return int(config[SEED_KEY] if SEED_KEY in config else config.get(REPEAT_KEY, 0))


class TrialKey(NamedTuple):
    """What identifies a trial across attempts and drivers (a resume skips the keys that ran)."""

    placement: str
    dropout: float  # rounded to 6 places: equal across a float's trip through MLflow's params
    optimizer: str  # the spec's optimizer label
    seed: int
    # The block's learning rate (6 significant digits), fixed or drawn from a range; None only for
    # a configuration that does not say (an optimizer with a range makes the rate part of the block).
    learning_rate: float | None = None


def rate_key(rate: float | None) -> float | None:
    """A learning rate as a key holds it: equal across a float's trip through MLflow's params."""
    return None if rate is None else float(f"{float(rate):.6g}")


def config_key(config: Mapping[str, Any]) -> TrialKey:
    """The key of a Ray Tune configuration (a dict with placement, dropout, optimizer and seed)."""
    return TrialKey(
        str(config["placement"]),
        round(float(config["dropout"]), 6),
        str(config["optimizer"]),
        trial_seed(config),
        rate_key(config.get(RATE_KEY)),
    )


def trial_rate(config: Mapping[str, Any], spec: SweepSpec) -> float:
    """The learning rate a Ray Tune configuration trains with.

    A listed configuration says it (RATE_KEY); a TPE suggestion holds its draw from the
    optimizer's range under DRAWN_RATE_PREFIX + label (rounded as random search rounds its
    draws); otherwise it is the optimizer's fixed rate.
    """
    from sweep.spec.search import rounded_rate

    if config.get(RATE_KEY) is not None:
        return float(config[RATE_KEY])
    label = str(config["optimizer"])
    optimizer = spec.search.optimizers[label]
    if optimizer.fixed_rate is not None:
        return optimizer.fixed_rate
    return rounded_rate(float(config[DRAWN_RATE_PREFIX + label]))


# A trial run's params: what identifies its configuration, then its optimizer's settings.
_PLACEMENT, _DROPOUT, _OPTIMIZER, _SEED = "placement", "dropout", "optimizer", "seed"
_LABEL = "optimizer.label"  # the spec's label; `optimizer` is the Keras optimizer's name
_LEARNING_RATE = "optimizer.learning_rate"


def with_rates(trials: Any, spec: SweepSpec) -> Any:
    """A trial table (DataFrame) whose `learning_rate` column holds each trial's block rate.

    The recorded rate where there is one, else the optimizer's fixed rate: a table written
    without the column (or a run without its params) still pairs and keys its blocks.
    """
    fixed = trials["optimizer"].map({label: o.fixed_rate for label, o in spec.search.optimizers.items()})
    recorded = trials["learning_rate"] if "learning_rate" in trials.columns else None
    rates = fixed if recorded is None else recorded.astype(float).fillna(fixed)
    return trials.assign(learning_rate=rates.astype(float))


@dataclass(frozen=True)
class TrialConfig:
    """One trial's settings: the block it shares with other placements, its placement and seed."""

    placement: str
    dropout: float
    optimizer: str  # the label in spec.search.optimizers
    seed: int
    learning_rate: float | None = None  # the optimizer's; None where only its label is known
    phase: str = ""  # a Phase in per_placement sweeps, else empty

    @property
    def key(self) -> TrialKey:
        return TrialKey(
            self.placement,
            round(float(self.dropout), 6),
            self.optimizer,
            self.seed,
            rate_key(self.learning_rate),
        )

    @property
    def run_name(self) -> str:
        """The name of the trial's run (and, with Tune's id, of its Tune trial)."""
        return f"{self.placement}-d{float(self.dropout):g}-{self.optimizer}-s{self.seed}"

    @classmethod
    def from_tune(cls, config: Mapping[str, Any], spec: SweepSpec | None = None) -> TrialConfig:
        """A Ray Tune trial's configuration; `spec` adds its learning rate where the configuration
        does not list it, and its phase."""
        seed = trial_seed(config)
        rate, phase = config.get(RATE_KEY), ""
        learning_rate = float(rate) if rate is not None else None
        if spec is not None:
            learning_rate = trial_rate(config, spec)
            if spec.strategy.tuning == "per_placement":
                phase = Phase.CONFIRMATION if seed >= CONFIRM_SEED else Phase.TUNING
        return cls(
            str(config["placement"]),
            float(config["dropout"]),
            str(config["optimizer"]),
            seed,
            learning_rate,
            phase,
        )

    def to_tune(self) -> dict[str, Any]:
        """The configuration as a trial function reads it (`sweep.trainable.fit_trial`)."""
        return {
            "placement": self.placement,
            "dropout": self.dropout,
            "optimizer": self.optimizer,
            SEED_KEY: self.seed,
            **({RATE_KEY: self.learning_rate} if self.learning_rate is not None else {}),
        }

    def to_params(self, spec: SweepSpec) -> dict[str, str]:
        """The trial run's params: the configuration and every setting of its optimizer (with the
        block's learning rate: `optimizer.learning_rate`)."""
        optimizer = spec.search.optimizers[self.optimizer]
        rate = self.learning_rate if self.learning_rate is not None else optimizer.fixed_rate
        if rate is None:
            raise ValueError(f"trial {self.run_name}: a learning-rate range needs the block's drawn rate")
        params: dict[str, Any] = {
            _PLACEMENT: self.placement,
            _DROPOUT: float(self.dropout),
            _OPTIMIZER: optimizer.name,
            _SEED: self.seed,
            _LABEL: self.optimizer,
            **{f"optimizer.{k}": v for k, v in optimizer.settings_at(rate).items()},
        }
        return {k: str(v) for k, v in params.items()}

    @classmethod
    def from_params(cls, params: Mapping[str, str], phase: str = "") -> TrialConfig:
        """The configuration a trial run's params record (`phase`: its PHASE tag).

        Raises ValueError when they do not hold one: a driver that died between creating the run
        and logging its params left it without.
        """
        missing = [p for p in (_PLACEMENT, _DROPOUT, _OPTIMIZER, _SEED) if p not in params]
        if missing:
            raise ValueError(f"the run's params have no {', '.join(missing)}")
        try:
            rate = params.get(_LEARNING_RATE)
            return cls(
                params[_PLACEMENT],
                float(params[_DROPOUT]),
                params.get(_LABEL, params[_OPTIMIZER]),
                int(float(params[_SEED])),
                float(rate) if rate is not None else None,
                phase,
            )
        except ValueError as err:
            raise ValueError(f"the run's params do not hold a trial configuration: {err}") from None
