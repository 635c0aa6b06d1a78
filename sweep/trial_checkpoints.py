"""A sweep's trial checkpoints on its storage: found for a resumed sweep, indexed, removed.

Tune writes each trial's checkpoints under `SWEEP_DIR/<attempt>/<trial id>/checkpoint_NNNNNN`
(the sweep's folder is Tune's storage path, which every node sees). A resumed sweep runs each
trial under a new trial id, so the driver writes the resume index, `SWEEP_DIR/resume-checkpoints.json`
(the trial's `checkpoint_name` -> the checkpoint it continues from), before Tune starts; a trial with no
checkpoint of its own in this Tune run reads it (`sweep.trainable`). Plain files only: a worker
imports this without MLflow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sweep.training.checkpoints import CheckpointError, check_whole, read_meta
from sweep.trial import TrialConfig

RESUME_INDEX = "resume-checkpoints.json"
CHECKPOINT_GLOB = "checkpoint_*"


def checkpoint_name(trial: TrialConfig) -> str:
    """The name a trial's checkpoints carry (and the resume index keys): its run name, and its
    learning rate, which tells apart trials of one block drawn with different rates."""
    rate = f"-lr{trial.learning_rate:.6g}" if trial.learning_rate is not None else ""
    return trial.run_name + rate


def trial_checkpoints(sweep_dir: Path, trial_id: str) -> list[Path]:
    """Every checkpoint folder Tune wrote for `trial_id`, in any Tune run of the sweep."""
    if not trial_id or "/" in trial_id or trial_id.startswith("."):
        return []
    return [p for p in sweep_dir.glob(f"*/{trial_id}/{CHECKPOINT_GLOB}") if p.is_dir()]


def ended_trial_checkpoints(sweep_dir: Path, trial_id: str, earlier: str | None) -> list[Path]:
    """What a trial that ended for good leaves to remove: its own checkpoints, and every checkpoint
    of the earlier driver's Tune trial it continued from (`earlier`, one of them). A killed
    driver can leave that trial a newer, half-written checkpoint beside the one resumed from."""
    found = trial_checkpoints(sweep_dir, trial_id)
    if earlier:
        folder = Path(earlier).parent  # SWEEP_DIR/<attempt>/<trial id>
        inside = folder.parent.parent.resolve() == sweep_dir.resolve()
        found += trial_checkpoints(sweep_dir, folder.name) if inside else [Path(earlier)]
    return found


def newest(candidates: list[Path]) -> Path | None:
    """The whole candidate with the most epochs done; one that is not whole only if none is
    (restoring it then fails with the reason, which the trial records). A driver killed while a
    worker's checkpoint was being copied leaves a newer, partial one beside the last whole one."""
    readable: list[tuple[int, Path]] = []
    for path in candidates:
        try:
            meta = read_meta(path)
            check_whole(path, meta)
            readable.append((meta["epoch"], path))
        except CheckpointError:
            continue
    if readable:
        return max(readable)[1]
    existing = sorted(p for p in candidates if p.is_dir())
    return existing[-1] if existing else None


def read_index(sweep_dir: Path) -> dict[str, str]:
    """The resume index: checkpoint name -> checkpoint folder ({} when there is none or it is unreadable)."""
    try:
        index = json.loads((sweep_dir / RESUME_INDEX).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in index.items()} if isinstance(index, dict) else {}


def write_index(sweep_dir: Path, index: dict[str, str]) -> None:
    """Replace the resume index (written whole, then renamed: a worker never reads half of it)."""
    tmp = sweep_dir / (RESUME_INDEX + ".tmp")
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    tmp.replace(sweep_dir / RESUME_INDEX)


def remove(paths: list[Path]) -> None:
    """Delete checkpoint folders (best effort: one already gone is fine)."""
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
