"""The CLI's input handling: exit codes and messages, never a traceback."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweep.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_validate_prints_the_trial_count_and_how_it_is_made() -> None:
    result = invoke("validate", str(EXAMPLES / "seed.yaml"))
    assert result.exit_code == 0
    assert "valid: 72 trials (4 placements x 3 dropout x 2 optimizers x 3 seeds)" in result.output


def test_validate_prints_every_error_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsearch: {dropout: [0.1, 1.5]}\ntraining: {epochs: 0, bogus: 1}\n")
    result = invoke("validate", str(bad))
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error")]
    assert len(lines) == 3
    assert "search.dropout[1]: must be >= 0 and < 1 (got 1.5)" in result.output
    assert "Traceback" not in result.output


def test_validate_missing_file_exits_2_without_traceback(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path / "none.yaml"))
    assert result.exit_code == 2
    assert "file not found" in result.output
    assert "Traceback" not in result.output


def test_validate_non_mapping_top_level(tmp_path: Path) -> None:
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    result = invoke("validate", str(bad))
    assert result.exit_code == 2
    assert "top level must be a mapping" in result.output


def test_set_overrides_apply_before_validation() -> None:
    result = invoke("validate", str(EXAMPLES / "seed.yaml"), "--set", "search.seeds=5")
    assert "valid: 120 trials" in result.output


def test_schema_is_json_with_the_spec_sections() -> None:
    import json

    result = invoke("schema")
    assert result.exit_code == 0
    assert "search" in json.loads(result.output)["properties"]


def test_show_model_lists_layers_in_order() -> None:
    result = invoke(
        "show-model", str(EXAMPLES / "seed.yaml"), "--placement", "after_dropout", "--dropout", "0.5"
    )
    assert result.exit_code == 0
    out = result.output
    order = [
        out.index(name)
        for name in ("block1_mlp", "block1_act", "block1_dropout", "block1_bn", "output_bn", "softmax")
    ]
    assert order == sorted(order)
    assert "(None, 64)" in out


def test_show_model_rejects_unknown_placement() -> None:
    result = invoke("show-model", str(EXAMPLES / "seed.yaml"), "--placement", "sideways")
    assert result.exit_code == 2
    assert "--placement: must be one of" in result.output


def test_results_for_unknown_sweep_exits_2(tmp_path: Path) -> None:
    result = invoke("results", "nope-1", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "no sweep with id 'nope-1'" in result.output


def test_run_with_missing_data_file_exits_2_before_anything_starts(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: x\ndataset: {{source: csv, path: {tmp_path / 'none.csv'}, target: y}}\n")
    result = invoke("run", str(spec), "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert "dataset.path: file not found" in result.output
    assert not (tmp_path / "runs" / "mlflow.db").exists()


def test_results_rejects_a_malformed_sweep_id(tmp_path: Path) -> None:
    result = invoke("results", "x' OR 1=1", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "is not a sweep id" in result.output


def test_run_rejects_zero_cpus_before_anything_starts(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["run", str(EXAMPLES / "quick.yaml"), "--runs-dir", str(tmp_path), "--cpus", "0"]
    )
    assert result.exit_code == 2
    assert "--cpus" in result.output
    assert not (tmp_path / "mlflow.db").exists()


def test_run_refuses_a_ray_client_address_clearly(tmp_path: Path) -> None:
    result = invoke(
        "run", str(EXAMPLES / "quick.yaml"), "--runs-dir", str(tmp_path), "--ray-address", "ray://head:10001"
    )
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "Ray Client (ray://) addresses are not supported" in output
    assert not output.startswith("quick:")  # refused before anything started
    assert "sweep submit" in output
    assert not list(tmp_path.iterdir())  # nothing was created


def test_submit_reports_a_bad_spec_before_contacting_the_cluster(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsearch: {dropout: [1.5]}\n")
    result = invoke("submit", str(bad), "--address", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "search.dropout[0]: must be >= 0 and < 1 (got 1.5)" in result.output


def test_submit_to_an_unreachable_cluster_says_so(tmp_path: Path) -> None:
    result = invoke("submit", str(EXAMPLES / "quick.yaml"), "--address", "http://127.0.0.1:9")
    assert result.exit_code == 1
    assert "cannot reach the Ray Jobs API at http://127.0.0.1:9" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["status", "cancel", "logs", "resume"])
def test_job_commands_refuse_a_malformed_sweep_id(command: str) -> None:
    args = [command, "../../etc"] + ([] if command == "resume" else ["--address", "http://127.0.0.1:9"])
    result = invoke(*args)
    assert result.exit_code == 2
    assert "is not a sweep id" in result.output


def test_tunes_trial_failure_tracebacks_stay_out_of_the_output() -> None:
    import logging

    import sweep.runner  # noqa: F401  (installs the filter)

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.seen.append(record.getMessage())

    tune_log = logging.getLogger("ray.tune.execution.tune_controller")
    run_log = logging.getLogger("ray.tune.tune")
    keep = Keep()
    for log in (tune_log, run_log):
        log.addHandler(keep)
    try:
        tune_log.error("Trial task failed for trial %s", "t1", exc_info=ValueError("boom"))
        tune_log.error("something else went wrong")
        run_log.error("Trials did not complete: %s", ["t1"])
    finally:
        for log in (tune_log, run_log):
            log.removeHandler(keep)
    assert keep.seen == ["something else went wrong"]


def test_validate_reads_a_loaders_data_and_locates_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "data.py").write_text(
        "import numpy as np\n"
        "def good(n):\n    return np.zeros((n, 3)), np.arange(n) % 2\n"
        "def short(**_):\n    return np.zeros((5, 3)), np.arange(4)\n"
        "def broken(**_):\n    raise OSError('disk gone')\n"
    )
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ndataset: {source: python, loader: data.py:good, args: {n: 100}}\n")
    assert "valid: " in invoke("validate", str(spec)).output
    for function, message in (
        ("short", ": x has 5 rows but y has 4"),
        ("broken", "data.py:broken raised OSError: disk gone"),
        ("missing", "has no function 'missing'"),
    ):
        result = invoke("validate", str(spec), "--set", f"dataset.loader={tmp_path / 'data.py'}:{function}")
        output = " ".join(result.output.split())  # rich wraps long lines
        assert result.exit_code == 2, output
        assert "dataset.loader: " in output and message in output
        assert "Traceback" not in output


def test_validate_names_the_keras_file_to_place_when_the_cache_lacks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\ndataset: {source: keras, name: mnist, max_rows: 1000}\nmodel: {kind: cnn}\n")
    result = invoke("validate", str(spec))
    output = " ".join(result.output.split())
    assert result.exit_code == 2
    assert (
        f"dataset.name: mnist is not in Keras' cache: no file {tmp_path / 'datasets' / 'mnist.npz'}" in output
    )
    assert "Traceback" not in output


def test_validate_reads_an_image_folder(tmp_path: Path) -> None:
    from data_fixtures import write_image_folder

    write_image_folder(tmp_path / "imgs", {"a": 10, "b": 10})
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: x\ndataset: {source: image_folder, path: imgs, image_size: [8, 8], color_mode: grayscale}\n"
        "model: {kind: cnn}\ntraining: {batch_size: 8}\n"
    )
    assert invoke("validate", str(spec)).exit_code == 0
    result = invoke("validate", str(spec), "--set", "training.batch_size=32")
    assert result.exit_code == 2
    assert "training.batch_size: 32 is more than the 16 training rows" in result.output
