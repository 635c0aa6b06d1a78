"""The MLflow links we print or return, opened in a headless Chromium: they land on the runs view.

MLflow 3.17's UI opens an experiment in its GenAI view (Overview, Traces); only
`?workflowType=machine_learning` in the hash route opens the runs table under "Model training".
The links come from the project's own builders (`sweep.results`), which the CLI and the REST
service call, and from a real `sweep ui`; the runs are written by `SweepTracker`, as a sweep
writes them, to a real `mlflow server`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from cluster import MlflowServer, free_port
from PIL import Image

from sweep.results import mlflow_experiment_url, mlflow_run_url
from sweep.spec import parse_spec
from sweep.tracking import SweepTracker, trial_run_name

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium waits on Google services this closed network
# never answers.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
    "--virtual-time-budget=30000",  # virtual time: idle waits cost nothing, fetches are awaited
]
SWEEP_ID = "mlflow-links-20260101-000000-ab12"
SPEC = parse_spec(
    {
        "name": "mlflow-links",
        "search": {
            "placement": ["none", "after_dropout"],
            "dropout": [0.0],
            "optimizer": [{"name": "adam"}],
            "seeds": 1,
        },
        "tracking": {"experiment": "mlflow-links"},
    }
)
CONFIGS = [{"placement": p, "dropout": 0.0, "optimizer": "adam", "seed": 0} for p in SPEC.search.placement]
ML_VIEW = "?workflowType=machine_learning"


@dataclass(frozen=True)
class Sweep:
    server: str
    experiment_id: str
    parent_run_id: str
    db: Path


@dataclass(frozen=True)
class Page:
    title: str
    text: list[str]  # the visible text nodes, stripped
    hrefs: list[str]
    screenshot: Path


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title, self.text, self.hrefs = "", [], []
        self._skip: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip = tag
        self._in_title = tag == "title"
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._skip:
            self._skip = None
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._skip or not data.strip():
            return
        if self._in_title and not self.title:  # the document's; the logo's SVG has one too
            self.title = data.strip()
        self.text.append(data.strip())


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get install -y --no-install-recommends chromium` (.ci/run does it)",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    """A real `mlflow server` (SQLite) holding one sweep: its parent run and two trial runs."""
    root = tmp_path_factory.mktemp("mlflow-links")
    db = root / "mlflow.db"
    server = MlflowServer(f"sqlite:///{db}", root / "artifacts").start(timeout=300)  # 2 shared cores
    try:
        tracker = SweepTracker(server.url, SPEC, SWEEP_ID, runs_dir=None)
        tracker.start_sweep()
        for i, config in enumerate(CONFIGS):
            tracker.start_trial(f"t{i}", config)
            tracker.end_trial(f"t{i}", [{"epoch": 1, "val_accuracy": 0.5 + i / 10, "val_loss": 0.7}])
        tracker.finish_sweep("finished", tracker.ended_counts())
        yield Sweep(server.url, tracker.experiment_id, tracker.parent_run_id, db)
    finally:
        server.stop()


def open_page(url: str, out: Path) -> Page:
    """Chromium's DOM of `url` after its scripts ran, and a screenshot of it at `out`."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=out.parent)
    proc = subprocess.Popen(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            "--dump-dom",
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its renderer and GPU processes go with it on a timeout
    )
    try:
        dom, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish loading {url} in 120 s")
    assert proc.returncode == 0, f"chromium exited {proc.returncode} on {url}:\n{err[-2000:]}"
    out.with_suffix(".html").write_text(dom)  # what the assertions saw, for a failing test
    parsed = _Dom()
    parsed.feed(dom)
    return Page(parsed.title, parsed.text, parsed.hrefs, out)


def view(page: Page, experiment_id: str) -> str:
    """Which side of the UI the page shows: "runs" (Model training), "genai", or "unknown"."""
    base = f"#/experiments/{experiment_id}"
    genai = [f"{base}/overview", f"{base}/evaluation-runs", f"{base}/chat-sessions"]
    if "Observability" in page.text or any(h.startswith(tuple(genai)) for h in page.hrefs):
        return "genai"
    # The sidebar's "Runs" item, which only the Model training side has, keeps the query.
    runs = [h for h in page.hrefs if h.startswith(f"{base}/runs?") and "workflowType=machine_learning" in h]
    if runs and "Model registry" in page.text:
        return "runs"
    return "unknown"


def bare(url: str) -> str:
    """The same link without the query that picks the runs view."""
    assert url.endswith(ML_VIEW), url
    return url.removesuffix(ML_VIEW)


def assert_screenshot(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    with Image.open(path) as image:
        assert image.size == (1400, 900)
        # A blank or half-drawn page has a handful of colours; the rendered UI has many.
        assert image.convert("RGB").getcolors(maxcolors=64) is None, f"{path} is nearly blank"


def test_parent_run_link_opens_it_in_the_runs_view(chromium: Path, sweep: Sweep, tmp_path: Path) -> None:
    """`sweep run`/`status`/`submit --follow` print it, the REST service returns it as mlflow_url."""
    url = mlflow_run_url(sweep.server, sweep.experiment_id, sweep.parent_run_id)
    assert url is not None
    page = open_page(url, tmp_path / "parent-run.png")
    assert view(page, sweep.experiment_id) == "runs", page.text[:80]
    assert SWEEP_ID in page.text  # the parent run's name
    assert "Child runs" in page.text
    assert {trial_run_name(c) for c in CONFIGS} <= set(page.text)
    # The breadcrumb goes up to the experiment's runs, not to GenAI's "Evaluations".
    assert "Runs" in page.text and "Evaluations" not in page.text
    assert_screenshot(page.screenshot)

    without = open_page(bare(url), tmp_path / "parent-run-bare.png")
    assert view(without, sweep.experiment_id) == "genai", without.text[:80]


def test_experiment_link_opens_the_runs_table(chromium: Path, sweep: Sweep, tmp_path: Path) -> None:
    """`sweep submit` prints it (the parent run does not exist yet)."""
    url = mlflow_experiment_url(sweep.server, sweep.experiment_id)
    assert url is not None
    page = open_page(url, tmp_path / "experiment.png")
    assert view(page, sweep.experiment_id) == "runs", page.text[:80]
    assert page.title.startswith("Runs - "), page.title
    assert "Run Name" in page.text and SWEEP_ID in page.text  # the table, with the parent run in it
    assert_screenshot(page.screenshot)

    without = open_page(bare(url), tmp_path / "experiment-bare.png")
    assert view(without, sweep.experiment_id) == "genai", without.text[:80]
    assert without.title.startswith("Overview - "), without.title


def test_sweep_ui_prints_the_newest_sweep_in_the_runs_view(
    chromium: Path, sweep: Sweep, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sweep.cli",
                "ui",
                "--tracking-uri",
                f"sqlite:///{sweep.db}",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "250"},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            assert proc.poll() is None, f"sweep ui exited:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"sweep ui did not answer:\n{log.read_text()[-2000:]}"
            time.sleep(0.5)
        printed = re.search(r"newest sweep\s+(\S+)\s+(\S+)", log.read_text())
        assert printed, log.read_text()[-2000:]
        assert printed.group(1) == SWEEP_ID
        url = printed.group(2)
        assert url == mlflow_run_url(f"http://127.0.0.1:{port}", sweep.experiment_id, sweep.parent_run_id)
        page = open_page(url, tmp_path / "sweep-ui.png")
        assert view(page, sweep.experiment_id) == "runs", page.text[:80]
        assert SWEEP_ID in page.text
        assert_screenshot(page.screenshot)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
