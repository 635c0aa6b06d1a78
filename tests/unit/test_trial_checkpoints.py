"""A sweep's trial checkpoints on its storage: which one a resume takes, which are whole, and which a
trial that ended for good leaves to remove."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sweep.training.checkpoints import FORMAT, META_FILE, STATE_FILE, is_whole
from sweep.trial_checkpoints import ended_trial_checkpoints, newest


def _folders(root: Path, *names: str) -> list[Path]:
    made = [root / name for name in names]
    for folder in made:
        folder.mkdir(parents=True)
    return made


def test_an_ended_trial_removes_its_own_and_all_checkpoints_of_the_trial_it_continued(tmp_path: Path) -> None:
    own = _folders(tmp_path, "attempt-2/b_00000/checkpoint_000000")
    # the killed driver's trial: the checkpoint resumed from, and a newer one its worker left half-written
    earlier = _folders(tmp_path, "attempt-1/a_00000/checkpoint_000000", "attempt-1/a_00000/checkpoint_000001")
    other = _folders(tmp_path, "attempt-1/a_00001/checkpoint_000000")  # another trial's: kept

    found = ended_trial_checkpoints(tmp_path, "b_00000", str(earlier[0]))

    assert sorted(found) == sorted(own + earlier)
    assert not set(found) & set(other)


def test_without_an_earlier_checkpoint_only_its_own_go(tmp_path: Path) -> None:
    own = _folders(tmp_path, "attempt-1/a_00000/checkpoint_000003")
    _folders(tmp_path, "attempt-1/a_00001/checkpoint_000000")
    assert ended_trial_checkpoints(tmp_path, "a_00000", None) == own
    assert ended_trial_checkpoints(tmp_path, "../a_00000", None) == []


def test_an_earlier_checkpoint_outside_the_sweep_folder_is_the_only_one_taken_there(tmp_path: Path) -> None:
    elsewhere = _folders(tmp_path, "elsewhere/x/checkpoint_000000", "elsewhere/x/checkpoint_000001")
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    assert ended_trial_checkpoints(sweep_dir, "a_00000", str(elsewhere[0])) == [elsewhere[0]]


def _checkpoint(folder: Path, epoch: int, *, cut_short: bool = False) -> Path:
    """A checkpoint as a worker writes it; `cut_short`: its arrays copied only in part."""
    folder.mkdir(parents=True)
    np.savez(folder / STATE_FILE, np.zeros(1000))
    size = (folder / STATE_FILE).stat().st_size
    record = {"format": FORMAT, "trial": "t", "epoch": epoch, "history": [], "state_bytes": size}
    (folder / META_FILE).write_text(json.dumps(record))
    if cut_short:
        (folder / STATE_FILE).write_bytes((folder / STATE_FILE).read_bytes()[: size // 3])
    return folder


def test_newest_is_the_last_whole_checkpoint_not_a_newer_one_cut_short(tmp_path: Path) -> None:
    whole = _checkpoint(tmp_path / "checkpoint_000000", 2)
    partial = _checkpoint(tmp_path / "checkpoint_000001", 4, cut_short=True)
    assert newest([whole, partial]) == whole
    assert newest([partial]) == partial  # none whole: restoring it records why it started over
    assert newest([whole, _checkpoint(tmp_path / "checkpoint_000002", 6)]).name == "checkpoint_000002"
    assert newest([]) is None


def test_is_whole_needs_the_record_and_the_arrays_it_names(tmp_path: Path) -> None:
    assert is_whole(_checkpoint(tmp_path / "a", 2))
    assert not is_whole(_checkpoint(tmp_path / "b", 2, cut_short=True))
    (tmp_path / "c").mkdir()
    assert not is_whole(tmp_path / "c")  # no record: a copy that has not reached it
