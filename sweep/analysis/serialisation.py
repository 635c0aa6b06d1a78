"""An analysis as plain JSON-ready data and as flat metrics."""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import pandas as pd

from sweep.analysis.estimate import Estimate
from sweep.analysis.factors import level_key


def estimate_metrics(prefix: str, est: Estimate) -> dict[str, float]:
    return {
        f"{prefix}_mean": est.mean,
        f"{prefix}_std": est.std,
        f"{prefix}_ci_low": est.ci_low,
        f"{prefix}_ci_high": est.ci_high,
        f"{prefix}_n": float(est.n),
    }


def plain(obj: Any) -> Any:
    """`obj` as JSON-ready builtins."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, pd.DataFrame):
        return {
            "columns": [plain(level_key(c)) for c in obj.columns],
            "rows": {str(i): [plain(v) for v in row] for i, row in obj.iterrows()},
        }
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj
