"""The grids bench.py times: examples/seed.yaml plus overrides, and where results go."""

from __future__ import annotations

from pathlib import Path

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
