"""A finished sweep's answer: analyse its trials from MLflow and log the report on its parent run."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from mlflow.tracking import MlflowClient
from pydantic import ValidationError

from sweep.analysis import Analysis, adaptive_seeds, analyse
from sweep.report import ReportFiles, short_answer, write_report
from sweep.results import find_sweep, learning_curves, trial_table
from sweep.spec import AnalysisSpec
from sweep.store import SweepRecord, SweepStore
from sweep.store.layout import BEST_PLACEMENT, NOTE, REPORT_DIR
from sweep.trial import RunStatus


@dataclass(frozen=True)
class PublishedReport:
    """The analysis, the trial table it was made from, and where its files went."""

    analysis: Analysis
    files: ReportFiles
    record: SweepRecord
    trials: pd.DataFrame


def _target_accuracy(record: SweepRecord) -> float | None:
    """The spec's training.target_accuracy, when the parent run's spec.yaml has one."""
    try:
        spec = yaml.safe_load(record.spec_yaml or "") or {}
        value = (spec.get("training") or {}).get("target_accuracy")
        return float(value) if value is not None else None
    except (yaml.YAMLError, AttributeError, TypeError, ValueError):
        return None


def _analysis_settings(record: SweepRecord) -> AnalysisSpec:
    """The spec's analysis section; the defaults for sweeps recorded before it existed."""
    try:
        spec = yaml.safe_load(record.spec_yaml or "") or {}
        return AnalysisSpec.model_validate(spec.get("analysis") or {})
    except (yaml.YAMLError, AttributeError, ValidationError):
        return AnalysisSpec()


def _split_per_seed(record: SweepRecord) -> bool | None:
    """The spec's dataset.split_per_seed; None when its spec.yaml does not say."""
    try:
        spec = yaml.safe_load(record.spec_yaml or "") or {}
        value = (spec.get("dataset") or {}).get("split_per_seed")
        return value if isinstance(value, bool) else None
    except (yaml.YAMLError, AttributeError):
        return None


def publish_report(
    client: MlflowClient,
    sweep_id: str,
    out_dir: Path | None = None,
    log: bool = True,
    known_curves: pd.DataFrame | None = None,
) -> PublishedReport:
    """Analyse `sweep_id` as MLflow holds it; write the report; log it on the parent run.

    Works on any sweep in the store, including ones recorded before reports existed.
    `known_curves` (the same long format as `learning_curves`) spares reading those runs'
    histories back, one request per run and metric.
    """
    record = find_sweep(client, sweep_id)
    trials = trial_table(client, record)
    finished = trials.run_id[trials.status == RunStatus.FINISHED].tolist()
    have = set() if known_curves is None else set(known_curves.run_id)
    fetched = learning_curves(client, [r for r in finished if r not in have])
    curves = fetched if known_curves is None else pd.concat([known_curves, fetched], ignore_index=True)
    settings = _analysis_settings(record)
    parent = client.get_run(record.parent_run_id).data  # an adaptive sweep's calls are recorded here
    analysis = analyse(
        trials,
        curves,
        target_accuracy=_target_accuracy(record),
        reference=settings.reference,
        equivalence_margin=settings.equivalence_margin,
        adaptive=adaptive_seeds(parent.tags, parent.metrics),
        split_per_seed=_split_per_seed(record),
    )
    title = f"Where does BatchNormalization go? — {sweep_id}"
    if out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix=f"{sweep_id}-report-"))
    files = write_report(analysis, trials, curves, out_dir, title=title)
    if log:
        run_id = record.parent_run_id
        for path in (files.markdown, files.html, files.json, *files.figures):
            client.log_artifact(run_id, str(path), REPORT_DIR)
        metrics = {k: v for k, v in analysis.summary_metrics().items() if math.isfinite(v)}
        answer = "\n".join(f"- {s}" for s in short_answer(analysis))
        verdict = "\n".join(f"- {s}" for s in analysis.verdict)
        note = (
            f"## The answer\n\n{answer}\n\nForest plot and detail: artifacts/{REPORT_DIR}/report.html"
            f"\n\n## Verdict\n\n{verdict}"
        )
        tags = {
            # The run's description in the MLflow UI: the answer, first thing one sees.
            NOTE: note[:5000],
            BEST_PLACEMENT: analysis.best_placement or "none finished",
        }
        SweepStore(client).log_on_sweep(run_id, metrics, tags)
    return PublishedReport(analysis, files, record, trials)
