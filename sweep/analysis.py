"""Statistics over the trial table: per-placement summaries, paired comparisons and a verdict.

Pure: numpy, pandas and scipy only. Accuracies stay fractions in summaries; differences between
placements are percentage points. A trial is *usable* when it FINISHED with a finite metric and
a finite final validation loss; everything else counts as failed or diverged.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from sweep.models import BLOCK_ORDER
from sweep.spec import PLACEMENTS

ACCURACY_METRICS = ("final_val_accuracy", "best_val_accuracy", "final_accuracy")
PAIR_KEYS = ("dropout", "optimizer", "seed")
REQUIRED_COLUMNS = (
    "run_id",
    "status",
    "placement",
    "dropout",
    "optimizer",
    "seed",
    "final_val_accuracy",
    "best_val_accuracy",
    "final_val_loss",
)
ALPHA = 0.05
MIN_PAIRS = 3
RESOLUTION_POINTS = 1.0  # the smallest difference worth resolving (EVIDENCE.md, "Noise")
MAX_CI_WIDTH_POINTS = 2.0  # a wider interval cannot rule out a 1-point difference either way
DEFAULT_TARGET_SHARE = 0.95
_Z_POWER = 1.96 + 0.84  # two-sided alpha 0.05 at 80% power
_RATIO_TOLERANCE = 1.5  # "about 1/(1-rate)": within this factor; ReLU means push it above
_LOW_DROPOUT = 0.2
_HIGH_DROPOUT = 0.5
_EPOCH_RESOLUTION = 0.5

_METRIC_LABELS = {
    "final_val_accuracy": "final validation accuracy",
    "best_val_accuracy": "best validation accuracy",
    "final_accuracy": "final training accuracy",
}

Outcome = Literal["better", "worse", "indistinguishable", "cannot tell"]
Status = Literal["confirmed", "refuted", "cannot tell", "not tested"]


@dataclass(frozen=True)
class Estimate:
    """Mean, sample SD and two-sided 95% t confidence interval of the finite values given."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    @classmethod
    def of(cls, values: Sequence[float] | pd.Series | np.ndarray) -> Estimate:
        """The estimate over `values`; NaN where too few values to say."""
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        n = len(x)
        if n == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        mean = float(x.mean())
        if n == 1:
            return cls(1, mean, math.nan, math.nan, math.nan)
        std = float(x.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        return cls(n, mean, std, mean - half, mean + half)

    @property
    def ci_width(self) -> float:
        """High minus low end of the interval."""
        return self.ci_high - self.ci_low


@dataclass(frozen=True)
class PlacementSummary:
    """What the trials of one placement did; accuracies are fractions."""

    placement: str
    n_trials: int
    n_finished: int
    failed_share: float  # status not FINISHED, or a non-finite metric or final val loss
    metric: Estimate  # the analysed metric, over usable trials
    final_val_accuracy: Estimate
    best_val_accuracy: Estimate
    final_val_loss: Estimate
    epochs_to_target: Estimate  # over FINISHED trials that reached the target
    n_with_curves: int  # FINISHED trials with per-epoch data
    n_reached: int
    bn_variance_shift: Estimate

    @property
    def reached_share(self) -> float:
        """Share of FINISHED trials with curves that reached the target accuracy."""
        return self.n_reached / self.n_with_curves if self.n_with_curves else math.nan


@dataclass(frozen=True)
class VarianceShift:
    """BN moving variance / test-time variance of one placement at one dropout rate."""

    placement: str
    dropout: float
    ratio: Estimate
    expected: float | None  # 1/(1-rate) where dropout feeds BN directly; None elsewhere


@dataclass(frozen=True)
class Comparison:
    """One placement against a reference, paired on dropout, optimizer and seed."""

    placement: str
    reference: str
    diff: Estimate  # placement - reference, percentage points
    n_seeds: int  # distinct seeds among the pairs
    p_value: float  # paired t-test; NaN with fewer than 2 pairs or no variance
    p_holm: float  # Holm-adjusted across the comparisons with the reference
    effect_size: float  # Cohen's d_z: mean difference / SD of the differences
    outcome: Outcome
    power_sd: float  # SD of a paired difference (points) used for the sample size; NaN if none
    pairs_needed: int | None  # to resolve a 1-point difference at 80% power
    seeds_needed: int | None

    @property
    def n_pairs(self) -> int:
        """Number of matched pairs."""
        return self.diff.n


@dataclass(frozen=True, eq=False)
class Interaction:
    """Mean metric by placement and one other factor, and the winner at each level."""

    factor: str  # "dropout" or "optimizer"
    table: pd.DataFrame  # index placement, columns the factor's levels, mean metric (fraction)
    counts: pd.DataFrame  # usable trials per cell
    winners: tuple[tuple[Any, str], ...]  # (level, placement with the highest mean)
    note: str | None  # a sentence when the winner changes with the level


@dataclass(frozen=True)
class BestDropout:
    """The dropout rate with the highest mean metric in one group of placements."""

    group: str  # "with BN" or "without BN"
    dropout: float
    mean: float
    n: int


@dataclass(frozen=True)
class Expectation:
    """One expectation of EVIDENCE.md and what this sweep says about it."""

    id: int
    title: str
    status: Status
    detail: str


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything the report says about one sweep."""

    metric: str
    target_accuracy: float  # NaN when no trial gives a basis for it
    target_is_default: bool
    n_trials: int
    n_seeds: int
    best_placement: str | None
    placements: tuple[PlacementSummary, ...]
    variance_shift: tuple[VarianceShift, ...]
    comparisons: tuple[Comparison, ...]
    interactions: tuple[Interaction, ...]
    best_dropout: tuple[BestDropout, ...]
    verdict: tuple[str, ...]
    expectations: tuple[Expectation, ...]

    def placement(self, name: str) -> PlacementSummary:
        """The summary of placement `name`."""
        for summary in self.placements:
            if summary.placement == name:
                return summary
        have = ", ".join(s.placement for s in self.placements)
        raise KeyError(f"placement: no trials for {name!r} (have {have})")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data; NaN and infinities become None."""
        data: dict[str, Any] = _plain(self)
        data["metric_label"] = metric_label(self.metric)
        return data

    def summary_metrics(self) -> dict[str, float]:
        """Flat finite numbers for a tracking server, keyed like `placement.none.failed_share`."""
        out: dict[str, float] = {"target_accuracy": self.target_accuracy}
        for s in self.placements:
            pre = f"placement.{s.placement}."
            for name, est in (
                ("val_accuracy", s.final_val_accuracy),
                ("best_val_accuracy", s.best_val_accuracy),
                ("val_loss", s.final_val_loss),
                ("epochs_to_target", s.epochs_to_target),
            ):
                out |= _estimate_metrics(pre + name, est)
            out[pre + "bn_variance_shift_mean"] = s.bn_variance_shift.mean
            out[pre + "reached_share"] = s.reached_share
            out[pre + "failed_share"] = s.failed_share
        for c in self.comparisons:
            pre = f"comparison.{c.placement}_vs_{c.reference}."
            out[pre + "diff_points"] = c.diff.mean
            out[pre + "diff_ci_low"] = c.diff.ci_low
            out[pre + "diff_ci_high"] = c.diff.ci_high
            out[pre + "p_holm"] = c.p_holm
            out[pre + "n_pairs"] = float(c.n_pairs)
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}


def analyse(
    trials: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    target_accuracy: float | None = None,
    metric: str = "final_val_accuracy",
) -> Analysis:
    """Summarise, compare and judge the placements of one sweep.

    `target_accuracy` (a fraction) defaults to 95% of the best placement's mean final
    validation accuracy, rounded down to a whole percent, so that most trials can reach it.
    """
    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise ValueError(f"target_accuracy: must be a fraction > 0 and <= 1 (got {target_accuracy})")
    trials = _clean_trials(trials, metric)
    curves = _clean_curves(curves)
    usable = trials[_usable_mask(trials, metric)]
    order = placement_order(trials["placement"].unique())

    target_is_default = target_accuracy is None
    if target_accuracy is None:
        means = usable.groupby("placement")["final_val_accuracy"].mean()
        best_mean = float(means.max()) if len(means) else math.nan
        target_accuracy = (
            math.floor(DEFAULT_TARGET_SHARE * best_mean * 100) / 100 if math.isfinite(best_mean) else math.nan
        )
    finished = trials[trials["status"] == "FINISHED"]
    epochs = _epochs_to_target(curves, finished["run_id"], target_accuracy)

    summaries = tuple(_summarise(trials, usable, epochs, p, metric) for p in order)
    usable_means = {s.placement: s.metric.mean for s in summaries if s.metric.n}
    best = max(usable_means, key=lambda p: usable_means[p]) if usable_means else None
    cells = max(1, len(trials[["dropout", "optimizer"]].drop_duplicates()))
    fallback_sd = _fallback_sd(usable, metric)
    comparisons = _compare_all(usable, best, order, metric, cells, fallback_sd)
    shifts = _variance_shift(usable, order)
    interactions = tuple(i for f in ("dropout", "optimizer") if (i := _interaction(usable, f, metric, order)))
    best_dropout = _best_dropout(usable, metric)
    n_seeds = int(trials["seed"].nunique())

    expectations = (
        _expect_before_vs_after(usable, metric),
        _expect_after_dropout(usable, metric, shifts),
        _expect_less_dropout_with_bn(usable, metric, best_dropout),
        _expect_faster_with_bn(finished, epochs, target_accuracy),
    )
    verdict = _verdict(
        trials,
        summaries,
        comparisons,
        shifts,
        interactions,
        metric,
        best,
        target_accuracy,
        target_is_default,
        cells,
        n_seeds,
    )
    return Analysis(
        metric=metric,
        target_accuracy=float(target_accuracy),
        target_is_default=target_is_default,
        n_trials=len(trials),
        n_seeds=n_seeds,
        best_placement=best,
        placements=summaries,
        variance_shift=shifts,
        comparisons=comparisons,
        interactions=interactions,
        best_dropout=best_dropout,
        verdict=tuple(verdict),
        expectations=expectations,
    )


def usable_trials(trials: pd.DataFrame, metric: str = "final_val_accuracy") -> pd.DataFrame:
    """FINISHED trials with a finite `metric` and final validation loss."""
    return trials[_usable_mask(trials, metric)]


def has_bn(placement: str) -> bool:
    """Whether a placement's blocks contain a BatchNormalization layer."""
    return "batchnorm" in BLOCK_ORDER.get(placement, ())


def metric_label(metric: str) -> str:
    """The metric's name in words."""
    return _METRIC_LABELS.get(metric, metric)


def format_number(x: float | None, digits: int = 1, signed: bool = False) -> str:
    """`x` rounded, with a true minus sign, or "n/a" when it is missing."""
    if x is None or not math.isfinite(x):
        return "n/a"
    x = round(x, digits) or 0.0  # no "-0.0"
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    return text.replace("-", "\u2212")


def format_p(p: float, name: str = "") -> str:
    """A p-value to two significant digits, as "p = 0.03" or "p < 0.001" when `name` is "p"."""
    if not math.isfinite(p):
        return f"{name} = n/a".strip()
    if p < 0.001:
        return f"{name} < 0.001".strip()
    return f"{name} = {p:.2g}" if name else f"{p:.2g}"


# --- input -----------------------------------------------------------------------------------


def _clean_trials(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    if metric not in ACCURACY_METRICS:
        raise ValueError(f"metric: must be one of {', '.join(ACCURACY_METRICS)} (got {metric!r})")
    needed = (*REQUIRED_COLUMNS, metric)
    missing = [c for c in dict.fromkeys(needed) if c not in trials.columns]
    if missing:
        raise ValueError(f"trials: missing columns {', '.join(missing)} (have {', '.join(trials.columns)})")
    out = trials.copy()
    numeric = [
        "final_val_accuracy",
        "best_val_accuracy",
        "final_val_loss",
        "final_accuracy",
        "final_loss",
        "epochs_completed",
        "duration_s",
        "bn_variance_shift",
        "dropout",
    ]
    for col in numeric:
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    # Grid values can carry float noise after a round trip through a tracking server.
    out["dropout"] = out["dropout"].round(6)
    out["placement"] = out["placement"].astype(str)
    out["optimizer"] = out["optimizer"].astype(str)
    out["run_id"] = out["run_id"].astype(str)
    out["status"] = out["status"].astype(str).str.upper()
    if "bn_variance_shift" not in out.columns:
        out["bn_variance_shift"] = math.nan
    return out


def _clean_curves(curves: pd.DataFrame | None) -> pd.DataFrame:
    columns = ["run_id", "epoch", "val_accuracy"]
    if curves is None or curves.empty or not set(columns) <= set(curves.columns):
        return pd.DataFrame(
            {
                "run_id": pd.Series(dtype=str),
                "epoch": pd.Series(dtype=float),
                "val_accuracy": pd.Series(dtype=float),
            }
        )
    out = curves[columns].copy()
    out["run_id"] = out["run_id"].astype(str)
    out["epoch"] = pd.to_numeric(out["epoch"], errors="coerce").astype(float)
    out["val_accuracy"] = pd.to_numeric(out["val_accuracy"], errors="coerce").astype(float)
    return out.dropna(subset=["epoch"])


def _usable_mask(trials: pd.DataFrame, metric: str) -> pd.Series:
    finite = np.isfinite(trials[metric].to_numpy(dtype=float)) & np.isfinite(
        trials["final_val_loss"].to_numpy(dtype=float)
    )
    return (trials["status"] == "FINISHED") & finite


def placement_order(placements: Iterable[str]) -> list[str]:
    """`placements` in the spec's order, unknown names last."""
    known = [p for p in PLACEMENTS if p in set(placements)]
    return known + sorted(set(placements) - set(PLACEMENTS))


# --- per placement ---------------------------------------------------------------------------


def _epochs_to_target(curves: pd.DataFrame, run_ids: pd.Series, target: float) -> pd.DataFrame:
    """Per run with curves: the first epoch at or above `target` (NaN if never) and the last."""
    c = curves[curves["run_id"].isin(set(run_ids))]
    if c.empty or not math.isfinite(target):
        return pd.DataFrame({"reached": pd.Series(dtype=float), "last": pd.Series(dtype=float)})
    by_run = c.groupby("run_id")["epoch"]
    reached = c[c["val_accuracy"] >= target - 1e-9].groupby("run_id")["epoch"].min()
    return pd.DataFrame({"reached": reached.reindex(by_run.max().index), "last": by_run.max()})


def _summarise(
    trials: pd.DataFrame, usable: pd.DataFrame, epochs: pd.DataFrame, placement: str, metric: str
) -> PlacementSummary:
    mine = trials[trials["placement"] == placement]
    ok = usable[usable["placement"] == placement]
    finished_ids = mine.loc[mine["status"] == "FINISHED", "run_id"]
    with_curves = epochs.loc[epochs.index.isin(set(finished_ids)), "reached"]
    return PlacementSummary(
        placement=placement,
        n_trials=len(mine),
        n_finished=int((mine["status"] == "FINISHED").sum()),
        failed_share=1 - len(ok) / len(mine) if len(mine) else math.nan,
        metric=Estimate.of(ok[metric]),
        final_val_accuracy=Estimate.of(ok["final_val_accuracy"]),
        best_val_accuracy=Estimate.of(ok["best_val_accuracy"]),
        final_val_loss=Estimate.of(ok["final_val_loss"]),
        epochs_to_target=Estimate.of(with_curves),
        n_with_curves=len(with_curves),
        n_reached=int(with_curves.notna().sum()),
        bn_variance_shift=Estimate.of(ok["bn_variance_shift"]),
    )


def _variance_shift(usable: pd.DataFrame, order: Sequence[str]) -> tuple[VarianceShift, ...]:
    rows = []
    present = usable[np.isfinite(usable["bn_variance_shift"].to_numpy(dtype=float))]
    for placement in order:
        mine = present[present["placement"] == placement]
        for dropout, group in mine.groupby("dropout"):
            rate = float(dropout)
            expected = 1 / (1 - rate) if _dropout_feeds_bn(placement) and rate < 1 else None
            rows.append(VarianceShift(placement, rate, Estimate.of(group["bn_variance_shift"]), expected))
    return tuple(rows)


def _dropout_feeds_bn(placement: str) -> bool:
    steps = BLOCK_ORDER.get(placement, ())
    return any(a == "dropout" and b == "batchnorm" for a, b in itertools.pairwise(steps))


# --- paired comparisons ----------------------------------------------------------------------


def _paired(
    data: pd.DataFrame, placement: str, reference: str, value: str, scale: float = 100.0
) -> tuple[pd.Series, int]:
    """`placement - reference` per matched (dropout, optimizer, seed), and the seeds involved.

    Repeated trials of one grid point are averaged first so each key pairs once.
    """
    keys = list(PAIR_KEYS)
    a = data[data["placement"] == placement].groupby(keys)[value].mean()
    b = data[data["placement"] == reference].groupby(keys)[value].mean()
    joined = pd.concat({"a": a, "b": b}, axis=1, join="inner").dropna()
    diffs = (joined["a"] - joined["b"]) * scale
    seeds = diffs.index.get_level_values("seed").nunique() if len(diffs) else 0
    return diffs, int(seeds)


def _paired_p(diffs: pd.Series) -> float:
    x = diffs.to_numpy(dtype=float)
    if len(x) < 2 or not np.std(x) > 1e-12:
        return math.nan
    return float(stats.ttest_1samp(x, 0.0).pvalue)  # the same as ttest_rel on the pairs


def _holm(p_values: Sequence[float]) -> list[float]:
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx])]):
        running = max(running, min(1.0, (len(idx) - rank) * p[i]))
        out[i] = running
    return out.tolist()


def _fallback_sd(usable: pd.DataFrame, metric: str) -> float:
    """SD of a difference of two independent trials, from the spread within placements (points).

    Used only when too few pairs measure the paired SD; it includes the dropout and optimizer
    effects, so the sample size it gives errs on the large side.
    """
    if len(usable) < 2:
        return math.nan
    resid = usable[metric] - usable.groupby("placement")[metric].transform("mean")
    dof = len(usable) - usable["placement"].nunique()
    if dof < 1:
        return math.nan
    return float(math.sqrt(2 * float((resid**2).sum()) / dof) * 100)


def _sample_size(sd: float, cells: int) -> tuple[int | None, int | None]:
    if not math.isfinite(sd) or sd <= 0:
        return None, None
    pairs = max(MIN_PAIRS, math.ceil((_Z_POWER * sd / RESOLUTION_POINTS) ** 2))
    return pairs, max(2, math.ceil(pairs / cells))


def _compare_all(
    usable: pd.DataFrame,
    best: str | None,
    order: Sequence[str],
    metric: str,
    cells: int,
    fallback_sd: float,
) -> tuple[Comparison, ...]:
    if best is None:
        return ()
    others = [p for p in order if p != best and (usable["placement"] == p).any()]
    paired = {p: _paired(usable, p, best, metric) for p in others}
    p_values = [_paired_p(paired[p][0]) for p in others]
    adjusted = _holm(p_values)
    out = []
    for p, p_value, p_holm in zip(others, p_values, adjusted, strict=True):
        diffs, seeds = paired[p]
        diff = Estimate.of(diffs)
        power_sd = diff.std if math.isfinite(diff.std) and diff.std > 0 else fallback_sd
        pairs_needed, seeds_needed = _sample_size(power_sd, cells)
        effect = diff.mean / diff.std if diff.n >= 2 and diff.std > 0 else math.nan
        out.append(
            Comparison(
                placement=p,
                reference=best,
                diff=diff,
                n_seeds=seeds,
                p_value=p_value,
                p_holm=p_holm,
                effect_size=effect,
                outcome=_outcome(diff, p_holm),
                power_sd=power_sd,
                pairs_needed=pairs_needed,
                seeds_needed=seeds_needed,
            )
        )
    return tuple(out)


def _outcome(diff: Estimate, p_holm: float) -> Outcome:
    if diff.n < MIN_PAIRS or not math.isfinite(p_holm):
        return "cannot tell"
    if p_holm < ALPHA and (diff.ci_high < 0 or diff.ci_low > 0):
        return "worse" if diff.mean < 0 else "better"
    if diff.ci_width > MAX_CI_WIDTH_POINTS:
        return "cannot tell"
    return "indistinguishable"


# --- interactions ----------------------------------------------------------------------------


def _interaction(usable: pd.DataFrame, factor: str, metric: str, order: Sequence[str]) -> Interaction | None:
    if usable.empty:
        return None
    table = usable.pivot_table(index="placement", columns=factor, values=metric, aggfunc="mean")
    counts = usable.pivot_table(index="placement", columns=factor, values=metric, aggfunc="count")
    rows = [p for p in order if p in table.index]
    table, counts = table.reindex(rows), counts.reindex(rows).fillna(0).astype(int)
    levels = pd.Index([_level(c) for c in table.columns], name=factor)
    table.columns, counts.columns = levels, levels
    winners = tuple(
        (_level(level), str(table[level].idxmax())) for level in table.columns if table[level].notna().any()
    )
    note = None
    if len({w for _, w in winners}) > 1:
        where = ", ".join(f"{w} {_level_text(factor, lvl)}" for lvl, w in winners)
        note = (
            f"The placement with the highest mean {metric_label(metric)} changes with {factor}: "
            f"{where} (cell means; only the paired comparisons test significance)."
        )
    return Interaction(factor, table, counts, winners, note)


def _level(level: Any) -> Any:
    return float(level) if isinstance(level, float | np.floating) else str(level)


def _level_text(factor: str, level: Any) -> str:
    return f"at {factor} {level:g}" if isinstance(level, float) else f"with {level}"


def _best_dropout(usable: pd.DataFrame, metric: str) -> tuple[BestDropout, ...]:
    out = []
    bn = usable["placement"].map(has_bn).astype(bool)
    for group, mask in (("with BN", bn), ("without BN", ~bn)):
        means = usable[mask].groupby("dropout")[metric].agg(["mean", "count"])
        if means.empty:
            continue
        dropout = float(means["mean"].idxmax())  # type: ignore[arg-type]
        row = means.loc[dropout]
        out.append(BestDropout(group, dropout, float(row["mean"]), int(row["count"])))  # type: ignore[arg-type]
    return tuple(out)


# --- expectations (EVIDENCE.md) --------------------------------------------------------------


def _ci_text(est: Estimate, unit: str = "points") -> str:
    if est.n >= 2:
        return (
            f"\u0394 = {format_number(est.mean, signed=True)} {unit}, 95% CI "
            f"{format_number(est.ci_low)} to {format_number(est.ci_high)}, n = {est.n} pairs"
        )
    return f"\u0394 = {format_number(est.mean, signed=True)} {unit}, n = {est.n} pair(s)"


def _within_a_point(diff: Estimate) -> Status:
    """Confirmed when the CI lies inside +-1 point, refuted when it lies outside."""
    lo, hi = diff.ci_low, diff.ci_high
    if diff.n < MIN_PAIRS or not math.isfinite(lo):
        return "cannot tell"
    if lo > -RESOLUTION_POINTS and hi < RESOLUTION_POINTS:
        return "confirmed"
    if lo >= RESOLUTION_POINTS or hi <= -RESOLUTION_POINTS:
        return "refuted"
    return "cannot tell"


def _expect_before_vs_after(usable: pd.DataFrame, metric: str) -> Expectation:
    title = "before_activation and after_activation differ by less than about 1 point"
    diffs, _ = _paired(usable, "after_activation", "before_activation", metric)
    if diffs.empty:
        return Expectation(
            1,
            title,
            "not tested",
            "The sweep has no matched pairs of before_activation and after_activation.",
        )
    diff = Estimate.of(diffs)
    status = _within_a_point(diff)
    detail = f"after_activation \u2212 before_activation: {_ci_text(diff)}."
    by_opt = diffs.groupby(level="optimizer").mean()
    if len(by_opt) > 1:
        signs = ", ".join(f"{o} {format_number(v, signed=True)}" for o, v in by_opt.items())
        flips = (by_opt > 0).any() and (by_opt < 0).any()
        detail += (
            f" Mean \u0394 by optimizer: {signs}; the sign "
            f"{'changes' if flips else 'does not change'} across optimizers (means only)."
        )
    detail += " One data set per sweep, so the sign across data sets is not tested here."
    return Expectation(1, title, status, detail)


def _expect_after_dropout(usable: pd.DataFrame, metric: str, shifts: Sequence[VarianceShift]) -> Expectation:
    title = (
        "after_dropout is close to the others at dropout 0.1, clearly worse at dropout >= 0.5, "
        "and its BN variance ratio is about 1/(1\u2212rate)"
    )
    present = set(usable["placement"])
    if "after_dropout" not in present or len(present) < 2:
        return Expectation(2, title, "not tested", "The sweep needs after_dropout and another placement.")
    others = sorted(present - {"after_dropout"})
    candidates = [p for p in others if has_bn(p)] or others
    ref = max(candidates, key=lambda p: usable.loc[usable["placement"] == p, metric].mean())
    parts: dict[str, Status] = {}
    details = []

    high = usable[usable["dropout"] >= _HIGH_DROPOUT]
    high_diff = Estimate.of(_paired(high, "after_dropout", ref, metric)[0])
    if high_diff.n:
        if high_diff.n < MIN_PAIRS or not math.isfinite(high_diff.ci_low):
            parts["high"] = "cannot tell"
        elif high_diff.ci_high < -RESOLUTION_POINTS:
            parts["high"] = "confirmed"
        elif high_diff.ci_low > -RESOLUTION_POINTS:
            parts["high"] = "refuted"
        else:
            parts["high"] = "cannot tell"
        details.append(
            f"at dropout \u2265 {_HIGH_DROPOUT:g}, after_dropout \u2212 {ref}: "
            f"{_ci_text(high_diff)} ({parts['high']})"
        )
    else:
        details.append(f"no pairs at dropout \u2265 {_HIGH_DROPOUT:g} (not tested)")

    low = usable[(usable["dropout"] > 0) & (usable["dropout"] <= _LOW_DROPOUT)]
    low_diff = Estimate.of(_paired(low, "after_dropout", ref, metric)[0])
    if low_diff.n:
        parts["low"] = _within_a_point(low_diff)
        details.append(
            f"at dropout in (0, {_LOW_DROPOUT:g}], after_dropout \u2212 {ref}: "
            f"{_ci_text(low_diff)} ({parts['low']})"
        )

    ratios = [s for s in shifts if s.placement == "after_dropout" and s.expected and s.dropout > 0]
    if ratios:
        ok = all(
            s.ratio.mean > 1 and 1 / _RATIO_TOLERANCE <= s.ratio.mean / s.expected <= _RATIO_TOLERANCE
            for s in ratios
            if s.expected is not None
        )
        parts["ratio"] = "confirmed" if ok else "refuted"
        listed = "; ".join(
            f"dropout {s.dropout:g}: {format_number(s.ratio.mean, 2)} vs {format_number(s.expected, 2)}"
            for s in ratios
        )
        details.append(
            f"variance ratio (measured vs 1/(1\u2212rate), within a factor "
            f"{_RATIO_TOLERANCE:g}): {listed} ({parts['ratio']})"
        )
    else:
        details.append("no variance-shift measurements at dropout > 0 (not tested)")

    status: Status
    if "high" not in parts and "ratio" not in parts:
        status = "not tested"
    elif "refuted" in parts.values():
        status = "refuted"
    elif {"high", "ratio"} <= set(parts) and set(parts.values()) == {"confirmed"}:
        status = "confirmed"
    else:
        status = "cannot tell"
    text = "; ".join(details)
    return Expectation(2, title, status, text[:1].upper() + text[1:] + ".")


def _expect_less_dropout_with_bn(
    usable: pd.DataFrame, metric: str, best: Sequence[BestDropout]
) -> Expectation:
    title = "With BN the best dropout rate is lower than without it"
    groups = {b.group: b for b in best}
    if {"with BN", "without BN"} - set(groups) or usable["dropout"].nunique() < 2:
        return Expectation(
            3,
            title,
            "not tested",
            "The sweep needs the none placement, a BN placement and at least two dropout rates.",
        )
    bn, plain = groups["with BN"], groups["without BN"]
    detail = (
        f"Best dropout with BN: {bn.dropout:g} (mean {format_number(bn.mean * 100)}%); "
        f"without BN: {plain.dropout:g} (mean {format_number(plain.mean * 100)}%)."
    )
    if bn.dropout == plain.dropout:
        return Expectation(
            3,
            title,
            "cannot tell",
            detail + " The same rate wins in both groups; a finer dropout grid could separate them.",
        )
    is_bn = usable["placement"].map(has_bn).astype(bool)
    p_values = []
    for group_mask, own, other in ((is_bn, bn, plain), (~is_bn, plain, bn)):
        rows = usable[group_mask]
        a = rows.loc[rows["dropout"] == own.dropout, metric].to_numpy(dtype=float)
        b = rows.loc[rows["dropout"] == other.dropout, metric].to_numpy(dtype=float)
        spread = np.std(np.concatenate([a, b])) if len(a) + len(b) else 0.0
        p = (
            float(stats.ttest_ind(a, b, equal_var=False).pvalue)
            if len(a) >= 2 and len(b) >= 2 and spread > 1e-12
            else math.nan
        )
        p_values.append(p)
    detail += (
        f" Each group's preference between the two rates (Welch t-test): with BN "
        f"{format_p(p_values[0], 'p')}, without BN {format_p(p_values[1], 'p')}."
    )
    if not all(math.isfinite(p) and p < ALPHA for p in p_values):
        return Expectation(
            3, title, "cannot tell", detail + " At least one group's preference could be noise."
        )
    status: Status = "confirmed" if bn.dropout < plain.dropout else "refuted"
    return Expectation(3, title, status, detail)


def _expect_faster_with_bn(finished: pd.DataFrame, epochs: pd.DataFrame, target: float) -> Expectation:
    title = "BN placements reach a fixed validation accuracy in fewer epochs than none"
    rows = finished[finished["run_id"].isin(set(epochs.index))].copy()
    is_bn = rows["placement"].map(has_bn).astype(bool)
    if rows.empty or not is_bn.any() or is_bn.all():
        return Expectation(
            4, title, "not tested", "The sweep needs per-epoch curves of both none and a BN placement."
        )
    reached = rows["run_id"].map(epochs["reached"])
    # A trial that never got there counts as one epoch past its last: a lower bound.
    rows["epochs"] = reached.fillna(rows["run_id"].map(epochs["last"]) + 1)
    rows["group"] = np.where(is_bn, "bn", "none")
    keys = list(PAIR_KEYS)
    per_key = rows.groupby([*keys, "group"])["epochs"].mean().unstack("group").dropna()
    diffs = per_key["bn"] - per_key["none"] if not per_key.empty else pd.Series(dtype=float)
    diff = Estimate.of(diffs)
    share = {g: float(reached[rows["group"] == g].notna().mean()) for g in ("bn", "none")}
    detail = (
        f"Target {format_number(target * 100, 0)}% validation accuracy; BN (mean over BN "
        f"placements) \u2212 none: {_ci_text(diff, 'epochs')}; reached by "
        f"{format_number(share['bn'] * 100, 0)}% of BN trials and "
        f"{format_number(share['none'] * 100, 0)}% of none trials (a trial that never reached "
        f"it counts as one epoch past its last)."
    )
    if len(diffs) and diffs.index.get_level_values("optimizer").nunique() > 1:
        by_opt = diffs.groupby(level="optimizer").mean()
        detail += (
            " Mean by optimizer: "
            + ", ".join(f"{o} {format_number(v, signed=True)}" for o, v in by_opt.items())
            + " epochs."
        )
    status: Status
    if diff.n < MIN_PAIRS or not math.isfinite(diff.ci_low) or reached.notna().sum() == 0:
        status = "cannot tell"
    elif diff.ci_high < 0:
        status = "confirmed"
    elif (rows["epochs"] == 1).all():
        status = "cannot tell"
        detail += " Every trial reached the target in the first epoch; a higher target would tell."
    elif diff.ci_low >= -_EPOCH_RESOLUTION:
        status = "refuted"
    else:
        status = "cannot tell"
    return Expectation(4, title, status, detail)


# --- verdict ---------------------------------------------------------------------------------


def _verdict(
    trials: pd.DataFrame,
    summaries: Sequence[PlacementSummary],
    comparisons: Sequence[Comparison],
    shifts: Sequence[VarianceShift],
    interactions: Sequence[Interaction],
    metric: str,
    best: str | None,
    target: float,
    target_is_default: bool,
    cells: int,
    n_seeds: int,
) -> list[str]:
    label = metric_label(metric)
    if best is None:
        return [f"No trial finished with a finite {label}; there is nothing to compare."]
    lead = next(s for s in summaries if s.placement == best)
    est = lead.metric
    ci = (
        f", 95% CI {format_number(est.ci_low * 100)} to {format_number(est.ci_high * 100)}%"
        if est.n >= 2
        else ""
    )
    out = [f"Highest mean {label}: {best} ({format_number(est.mean * 100)}%{ci}, n = {est.n} trials)."]
    if not comparisons:
        out.append("Only one placement has usable trials, so there is nothing to compare.")
    else:
        out.append(
            f"\u0394 below is each placement minus {best} in percentage points of {label}, "
            f"matched on dropout, optimizer and seed; p-values are Holm-adjusted paired t-tests."
        )
    for c in comparisons:
        out.append(_comparison_sentence(c, cells, n_seeds))
    if comparisons and not any(c.outcome in ("worse", "better") for c in comparisons):
        out.append(f"No placement is shown to differ from {best}; it leads by its mean only.")

    failed = [s for s in summaries if s.failed_share > 0]
    if failed:
        n_bad = sum(round(s.failed_share * s.n_trials) for s in failed)
        shares = ", ".join(f"{s.placement} {format_number(s.failed_share * 100, 0)}%" for s in failed)
        out.append(
            f"{n_bad} of {len(trials)} trials failed or diverged and are left out of the "
            f"statistics ({shares} of their placement's trials)."
        )
    out.extend(
        f"{s.placement} has no usable trial, so it is not compared." for s in summaries if s.metric.n == 0
    )

    timed = [s for s in summaries if s.n_with_curves]
    if timed and math.isfinite(target):
        how = (
            f" (the default target: {DEFAULT_TARGET_SHARE:.0%} of the best mean final validation "
            f"accuracy, rounded down)"
            if target_is_default
            else ""
        )
        listed = ", ".join(
            f"{s.placement} {format_number(s.epochs_to_target.mean)} "
            f"({format_number(s.reached_share * 100, 0)}% reached it)"
            for s in timed
        )
        out.append(
            f"Mean epochs to reach {format_number(target * 100, 0)}% validation accuracy{how}, "
            f"over the trials that reached it: {listed}."
        )

    fed = [s for s in shifts if s.expected is not None and s.dropout > 0]
    if fed:
        listed = ", ".join(
            f"{format_number(s.ratio.mean, 2)} at dropout {s.dropout:g} "
            f"(1/(1\u2212rate) = {format_number(s.expected, 2)})"
            for s in fed
        )
        names = sorted({s.placement for s in fed})
        out.append(
            f"In {', '.join(names)}, BN's moving variance divided by the variance it sees at "
            f"test time is {listed}; dropout in front of BN predicts 1/(1\u2212rate) "
            f"(Li et al. 2019)."
        )
    out.extend(i.note for i in interactions if i.note)
    return out


def _comparison_sentence(c: Comparison, cells: int, n_seeds: int) -> str:
    d = c.diff
    ci = (
        f", 95% CI {format_number(d.ci_low)} to {format_number(d.ci_high)}"
        if d.n >= 2 and math.isfinite(d.ci_low)
        else ""
    )
    stats_text = f"\u0394 = {format_number(d.mean, signed=True)} points{ci}, n = {d.n} pairs"
    if c.outcome in ("worse", "better"):
        return (
            f"{c.placement} is {c.outcome} than {c.reference} by "
            f"{format_number(abs(d.mean))} points on this data ({stats_text}, Holm "
            f"{format_p(c.p_holm, 'p')}, d_z = {format_number(c.effect_size, 2)})."
        )
    if c.outcome == "indistinguishable":
        return f"{c.reference} and {c.placement} are indistinguishable on this data ({stats_text})."
    sentence = f"This sweep cannot tell {c.placement} from {c.reference} ({stats_text})"
    if c.pairs_needed is None or c.seeds_needed is None:
        return sentence + "; run at least 2 seeds to estimate how many would be needed."
    source = (
        "the observed SD of the paired differences"
        if d.n >= 2 and d.std > 0
        else "the spread across trials, as too few pairs measure the paired SD"
    )
    return (
        f"{sentence}; resolving a 1-point difference needs about {c.pairs_needed} pairs, "
        f"i.e. about {c.seeds_needed} seeds at {cells} pairs per seed (this sweep has "
        f"{n_seeds}; SD {format_number(c.power_sd)} points from {source})."
    )


# --- output ----------------------------------------------------------------------------------


def _estimate_metrics(prefix: str, est: Estimate) -> dict[str, float]:
    return {
        f"{prefix}_mean": est.mean,
        f"{prefix}_std": est.std,
        f"{prefix}_ci_low": est.ci_low,
        f"{prefix}_ci_high": est.ci_high,
        f"{prefix}_n": float(est.n),
    }


def _plain(obj: Any) -> Any:
    """`obj` as JSON-ready builtins."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, pd.DataFrame):
        return {
            "columns": [_plain(_level(c)) for c in obj.columns],
            "rows": {str(i): [_plain(v) for v in row] for i, row in obj.iterrows()},
        }
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj
