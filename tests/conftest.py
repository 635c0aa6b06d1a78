"""Shared test set-up: Keras on TensorFlow, quiet logs, the example specs, one store cache, and
`make test`'s two lanes under pytest-xdist (tests/lanes.py)."""

import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
from lanes import SharedServicesScheduling
from xdist.scheduler import LoadScopeScheduling

from sweep.settings import apply_environment

# The test process is an entry point, as the CLI is: MLflow, Ray and Tune get the library's environment.
apply_environment()

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadScopeScheduling | None:
    """`--dist loadgroup` (`make test`) schedules by SharedServicesScheduling."""
    if config.getvalue("dist") == "loadgroup":
        return SharedServicesScheduling(config, log)  # type: ignore[arg-type]
    return None


_ENDED: list[str] = []  # one teardown report per test that ran, whatever its outcome


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        _ENDED.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under xdist, a test its scheduler never sent would pass unseen: fail the run instead."""
    config = session.config
    if hasattr(config, "workerinput") or config.getvalue("dist") == "no" or config.option.collectonly:
        return
    if exitstatus == pytest.ExitCode.OK and len(_ENDED) < session.testscollected:
        missing = session.testscollected - len(_ENDED)
        writer = config.get_terminal_writer()
        writer.line()
        writer.line(f"{missing} collected tests never ran", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def sweep_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """SWEEP_CACHE_DIR for the session (and the processes it starts): not the developer's cache,
    yet MLflow's empty-store template is built once per session, not once per test's store."""
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("sweep-cache")
        patch.setenv("SWEEP_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture
def examples() -> Path:
    return EXAMPLES
