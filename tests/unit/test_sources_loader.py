"""sweep.sources.loader: a user's `(x, y)` loader in each REF form, and every way it is refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from sweep.data import DataError, load_dataset, load_sweep_data, trial_data
from sweep.reproducibility import data_fingerprint
from sweep.spec import DatasetSpec, load_spec

BLOBS = """
import numpy as np

def load(n=60, classes=3, offset=0.0):
    rng = np.random.default_rng(0)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, 5)) + y[:, None] + offset
    return x, y
"""


def _loader(folder: Path, body: str, name: str = "loaders.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(body))
    return folder / name


def _spec(ref: str, **fields: object) -> DatasetSpec:
    return DatasetSpec(source="python", loader=ref, **fields)


def test_a_file_ref_relative_to_the_spec_loads_with_the_specs_args(tmp_path: Path) -> None:
    _loader(tmp_path / "code", BLOBS)
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(
        "name: x\ndataset: {source: python, loader: code/loaders.py:load, args: {n: 90, classes: 3}}\n"
    )
    spec = load_spec(spec_file)
    assert spec.dataset.loader == f"{tmp_path / 'code' / 'loaders.py'}:load"
    data = load_sweep_data(spec)
    assert data.n_classes == 3
    assert len(data.x_train) + len(data.x_val) == 90
    assert data.input_shape == (5,)


def test_a_module_ref_loads_an_importable_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _loader(tmp_path / "blobs_pkg_9f3", BLOBS, "sets.py")
    (tmp_path / "blobs_pkg_9f3" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = load_dataset(_spec("blobs_pkg_9f3.sets:load", args={"n": 40, "classes": 2}))
    assert data.n_classes == 2
    assert len(data.x_train) + len(data.x_val) == 40


def test_a_loader_gives_the_same_data_and_fingerprint_as_the_npz_file_it_reads(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(80, 6, 6)), y=np.arange(80) % 4)
    ref = _loader(
        tmp_path, "import numpy as np\ndef load(path):\n    f = np.load(path)\n    return f['x'], f['y']\n"
    )
    args = {"path": str(tmp_path / "d.npz")}
    for image in (False, None, True):
        from_file = load_dataset(
            DatasetSpec(source="npz", path=str(tmp_path / "d.npz"), test_split=0.2), image
        )
        from_loader = load_dataset(_spec(f"{ref}:load", args=args, test_split=0.2), image)
        assert data_fingerprint(from_loader) == data_fingerprint(from_file)
        seeded = trial_data(from_loader, _spec(f"{ref}:load", args=args, test_split=0.2), 7)
        assert data_fingerprint(seeded) == data_fingerprint(
            trial_data(from_file, DatasetSpec(source="npz", path=str(tmp_path / "d.npz"), test_split=0.2), 7)
        )
    # image=None (a user's model): image rows keep their (H, W, C) shape
    assert load_dataset(_spec(f"{ref}:load", args=args), None).input_shape == (6, 6, 1)


def test_max_rows_keeps_a_stratified_seeded_subset(tmp_path: Path) -> None:
    ref = f"{_loader(tmp_path, BLOBS)}:load"
    args = {"n": 300, "classes": 3}
    data = load_dataset(_spec(ref, args=args, max_rows=60, validation_split=0.5))
    assert len(data.x_train) + len(data.x_val) == 60
    assert data.y_train.sum(axis=0).tolist() == [10, 10, 10]
    again = load_dataset(_spec(ref, args=args, max_rows=60, validation_split=0.5))
    other = load_dataset(_spec(ref, args=args, max_rows=60, validation_split=0.5, seed=1))
    assert data_fingerprint(again) == data_fingerprint(data) != data_fingerprint(other)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("def load():\n    raise RuntimeError('no disk')\n", r"raised RuntimeError: no disk"),
        ("import sys\ndef load():\n    sys.exit(3)\n", r"raised SystemExit: 3"),
        (
            "def load():\n    return 1, 2, 3\n",
            r"must return a pair \(x, y\) of numpy arrays \(got a tuple of 3\)",
        ),
        ("def load():\n    return {'x': 1}\n", r"must return a pair .* \(got a dict\)"),
        (
            "import numpy as np\ndef load():\n    return [[1.0]] * 4, np.zeros(4)\n",
            r"returned x as a list, not a numpy array",
        ),
        (
            "import numpy as np\ndef load():\n    return np.zeros((5, 2)), np.zeros(4)\n",
            r"x has 5 rows but y has 4",
        ),
        (
            "import numpy as np\ndef load():\n    return np.zeros((4, 2)), np.eye(4)\n",
            r"y must hold one label a row \(got shape \(4, 4\)\); not one-hot",
        ),
        (
            "import numpy as np\ndef load():\n    x = np.zeros((6, 2))\n    x[2, 1] = np.nan\n"
            "    return x, np.arange(6) % 2\n",
            r"has 1 missing, infinite or too large values .* in feature 1 \(first at x\[2\]\)",
        ),
        (
            "import numpy as np\ndef load():\n    return np.array(['a', 'b']), np.arange(2)\n",
            r"array x must hold real numbers",
        ),
        (
            "import numpy as np\ndef load():\n    return np.zeros((2, 100_001), np.float32), np.arange(2)\n",
            r"rows of 100,001 values \(at most 100,000\)",
        ),
        ("import numpy as np\ndef load():\n    return np.zeros((0, 2)), np.zeros(0)\n", r"has no rows"),
    ],
)
def test_a_loader_returning_the_wrong_thing_is_a_located_error(
    tmp_path: Path, body: str, message: str
) -> None:
    ref = f"{_loader(tmp_path, body)}:load"
    with pytest.raises(DataError, match=r"^dataset\.loader: .*" + message):
        load_dataset(_spec(ref))


def test_too_many_values_in_all_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sweep.sources.checks.MAX_LOADED_VALUES", 1000)
    ref = f"{_loader(tmp_path, BLOBS)}:load"
    with pytest.raises(
        DataError, match=r"dataset\.loader: .* 300 rows of 5 values are 1,500 values \(at most 1,000"
    ):
        load_dataset(_spec(ref, args={"n": 300}))


def test_a_missing_file_or_function_or_an_unknown_argument_is_located(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^dataset\.loader: file not found \(.*none\.py\)"):
        load_dataset(_spec(f"{tmp_path / 'none.py'}:load"))
    ref = _loader(tmp_path, BLOBS)
    with pytest.raises(
        DataError, match=r"^dataset\.loader: .*loaders\.py has no function 'nope' \(its functions: load"
    ):
        load_dataset(_spec(f"{ref}:nope"))
    with pytest.raises(
        DataError, match=r"unexpected keyword argument 'rows'.*dataset\.args as keyword arguments: rows"
    ):
        load_dataset(_spec(f"{ref}:load", args={"rows": 5}))
    with pytest.raises(
        DataError, match=r"^dataset\.loader: no plugin 'no-such-set' in entry-point group sweep\.datasets"
    ):
        load_dataset(_spec("no-such-set"))


def test_a_loader_with_one_class_names_the_loader(tmp_path: Path) -> None:
    ref = f"{_loader(tmp_path, BLOBS)}:load"
    with pytest.raises(DataError, match=r"^dataset\.loader: the data of .*loaders\.py:load has one class"):
        load_dataset(_spec(ref, args={"classes": 1}))
