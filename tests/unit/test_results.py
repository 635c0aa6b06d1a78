"""Links into the MLflow UI: the runs view, never the GenAI overview, and only for servers."""

from sweep.results import mlflow_experiment_url, mlflow_run_url


def test_experiment_links_open_the_runs_table() -> None:
    assert (
        mlflow_experiment_url("http://h:5000/", "7")
        == "http://h:5000/#/experiments/7?workflowType=machine_learning"
    )
    assert mlflow_experiment_url("sqlite:///runs/mlflow.db", "7") is None


def test_run_links_open_the_run_in_the_runs_view() -> None:
    assert (
        mlflow_run_url("https://h", "7", "r1")
        == "https://h/#/experiments/7/runs/r1?workflowType=machine_learning"
    )
    assert mlflow_run_url("file:///x", "7", "r1") is None
