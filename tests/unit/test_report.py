"""Plots and Markdown/HTML rendering of an analysis, written into a temporary folder."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sweep.adaptive import Call, call_tags
from sweep.analysis import analyse
from sweep.publish import publish_report
from sweep.report import (
    forest_rows,
    plot_final_accuracy,
    plot_forest,
    plot_heatmap,
    plot_learning_curves,
    render_html,
    render_markdown,
    short_answer,
    write_report,
)
from sweep.spec import parse_spec
from sweep.tracking import SweepTracker, local_tracking_uri
from sweep.trial import CONFIRM_SEED

ALL = ("before_activation", "after_activation", "after_dropout", "none")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_sweep(seeds: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small sweep where after_dropout is 3 points worse, with curves and one failed trial."""
    rng = np.random.default_rng(1)
    trials, curves = [], []
    for seed in range(seeds):
        for dropout in (0.1, 0.5):
            for optimizer in ("sgd", "adam"):
                for placement in ALL:
                    acc = 0.9 - 0.03 * (placement == "after_dropout") + rng.normal(0, 0.005)
                    run_id = f"{placement}-{dropout}-{optimizer}-{seed}"
                    trials.append(
                        {
                            "run_id": run_id,
                            "trial_id": run_id,
                            "status": "FINISHED",
                            "placement": placement,
                            "dropout": dropout,
                            "optimizer": optimizer,
                            "seed": seed,
                            "final_val_accuracy": acc,
                            "best_val_accuracy": acc + 0.004,
                            "final_val_loss": 1.2 - acc,
                            "best_val_loss": 1.1 - acc,
                            "final_accuracy": acc,
                            "final_loss": 1.2 - acc,
                            "epochs_completed": 8.0,
                            "duration_s": 2.0,
                            "bn_variance_shift": math.nan if placement == "none" else 1.1,
                            "error": None,
                        }
                    )
                    tau = 3.0 if placement == "none" else 1.5
                    curves += [
                        {
                            "run_id": run_id,
                            "epoch": e,
                            "loss": 1.0,
                            "accuracy": 0.8,
                            "val_loss": 1.0,
                            "val_accuracy": acc * (1 - math.exp(-e / tau)),
                        }
                        for e in range(1, 9)
                    ]
    table = pd.DataFrame(trials)
    table.loc[0, ["status", "final_val_accuracy", "final_val_loss", "error"]] = [
        "FAILED",
        math.nan,
        math.nan,
        "OOM",
    ]
    return table, pd.DataFrame(curves)


@pytest.fixture(scope="module")
def sweep():
    trials, curves = make_sweep()
    return trials, curves, analyse(trials, curves)


@pytest.fixture(scope="module")
def sweep6():
    """Six seeds: enough for the seed-level intervals to call every comparison (three often are not)."""
    trials, curves = make_sweep(seeds=6)
    return trials, curves, analyse(trials, curves)


def test_write_report_writes_every_file(tmp_path, sweep):
    trials, curves, analysis = sweep
    files = write_report(analysis, trials, curves, tmp_path / "out", title="Digits sweep")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {
        "forest.png",
        "learning_curves.png",
        "final_accuracy.png",
        "placement_dropout.png",
        "report.md",
        "report.html",
        "analysis.json",
    }
    assert len(files.figures) == 4
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in files.figures)
    assert json.loads(files.json.read_text())["best_placement"] == analysis.best_placement


def test_html_embeds_every_plot_and_references_no_external_image(tmp_path, sweep):
    trials, curves, analysis = sweep
    page = write_report(analysis, trials, curves, tmp_path, title="Digits sweep").html.read_text()
    assert page.count("data:image/png;base64,") == 4
    sources = re.findall(r"src=[\"']([^\"']*)", page)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "<link" not in text and "http" not in text and "<script" not in text
    assert "<table>" in page and "Digits sweep" in page


def test_markdown_report_starts_with_the_verdict_and_links_the_plots(tmp_path, sweep):
    trials, curves, analysis = sweep
    text = write_report(analysis, trials, curves, tmp_path, title="Digits sweep").markdown
    markdown = text.read_text()
    assert markdown.index("## Verdict") < markdown.index("## Per placement")
    assert analysis.verdict[0] in markdown
    assert "after_dropout is worse than" in markdown
    for name in ("forest.png", "learning_curves.png", "final_accuracy.png", "placement_dropout.png"):
        assert f"]({name})" in markdown


def test_empty_curves_skip_the_learning_curves_and_say_so(tmp_path, sweep):
    trials, _, _ = sweep
    analysis = analyse(trials, pd.DataFrame())
    (tmp_path / "learning_curves.png").write_bytes(b"stale")
    files = write_report(analysis, trials, pd.DataFrame(), tmp_path, title="No curves")
    assert not (tmp_path / "learning_curves.png").exists()
    assert len(files.figures) == 3
    assert "skipped, no per-epoch curves" in files.markdown.read_text()
    assert files.html.read_text().count("data:image/png;base64,") == 3


def test_render_markdown_works_on_its_own(sweep):
    _, _, analysis = sweep
    markdown = render_markdown(analysis)
    assert markdown.startswith("# Where does BatchNormalization go?")
    assert "## Paired comparisons against" in markdown
    assert "## Expectations (EVIDENCE.md)" in markdown
    assert "## Figures" not in markdown


def test_plots_report_no_data_instead_of_drawing_empty_figures(tmp_path, sweep):
    trials, _, _ = sweep
    failed = trials.assign(status="FAILED")
    assert not plot_learning_curves(trials, pd.DataFrame(), tmp_path / "a.png")
    assert not plot_final_accuracy(failed, tmp_path / "b.png")
    assert not plot_heatmap(failed, tmp_path / "c.png")
    assert not list(tmp_path.iterdir())


def test_the_report_names_the_declared_reference_and_badges_equivalence(sweep):
    _, _, analysis = sweep
    page = render_html(analysis)
    assert "Paired comparisons against none (declared in advance)" in page
    assert "<span class='status equivalent'>equivalent</span>" in page
    assert "<span class='status worse'>worse</span>" in page
    assert "indistinguishable" not in page
    assert "every claim of the verdict together errs at most 5% of the time" in render_markdown(analysis)


def test_too_few_trials_print_no_interval_rather_than_one_past_100_percent():
    trials, curves = make_sweep(seeds=1)
    trials = trials[trials["optimizer"] == "sgd"]  # two trials a placement
    markdown = render_markdown(analyse(trials, curves))
    per_placement = markdown.split("## Per placement")[1].split("##")[0]
    # One seed: no interval for a placement's mean either, as its trials are one unit.
    assert per_placement.count("too few seeds for an interval") == 4


# --- publish: a sweep read back from a real (SQLite) MLflow store -----------------------------


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return local_tracking_uri(tmp_path), tmp_path


def record_trials(tracker: SweepTracker, configs: list[dict], accuracy) -> None:
    for i, config in enumerate(configs):
        tracker.start_trial(f"t{i}", config)
        acc = accuracy(config)
        history = [
            {"epoch": e, "loss": 0.5, "accuracy": acc, "val_loss": 1.2 - acc, "val_accuracy": acc * e / 2}
            for e in (1, 2)
        ]
        tracker.end_trial(f"t{i}", history)


def test_publish_compares_a_per_placement_sweeps_re_runs_by_their_phase(store):
    uri, runs = store
    spec = parse_spec(
        {
            "name": "publish-pp",
            "search": {
                "placement": ["before_activation", "none"],
                "dropout": [0.1, 0.5],
                "optimizer": [{"name": "adam"}],
                "seeds": 3,
            },
            "strategy": {"algorithm": "random", "tuning": "per_placement", "num_samples": 2},
            "training": {"epochs": 2},
            "tracking": {"experiment": "publish-pp"},
        }
    )
    tracker = SweepTracker(uri, spec, "publish-pp-1", runs)
    tracker.start_sweep()
    chosen = {"before_activation": 0.1, "none": 0.5}
    tuning = [
        {"placement": p, "dropout": d, "optimizer": "adam", "seed": 0} for p in chosen for d in (0.1, 0.5)
    ]
    reruns = [
        {"placement": p, "dropout": d, "optimizer": "adam", "seed": CONFIRM_SEED + s}
        for s in range(3)
        for p, d in chosen.items()
    ]
    record_trials(
        tracker,
        tuning + reruns,
        lambda c: (
            0.8
            + 0.05 * (c["dropout"] == chosen[c["placement"]])
            + 0.01 * (c["seed"] % 1000)
            - 0.03 * (c["placement"] == "none" and c["seed"] >= CONFIRM_SEED)
        ),
    )
    published = publish_report(MlflowClient(uri), "publish-pp-1", runs / "report", log=False)
    phases = published.trials.set_index("seed")["phase"]
    assert set(phases[phases.index < CONFIRM_SEED]) == {"tuning"}
    assert set(phases[phases.index >= CONFIRM_SEED]) == {"confirmation"}
    analysis = published.analysis
    own = analysis.own_settings
    assert own is not None and own.n_tuning == 4 and own.n_seeds == 3
    assert {b.placement: b.dropout for b in own.blocks} == chosen
    (c,) = analysis.comparisons
    assert (c.placement, c.reference, c.n_pairs, c.outcome) == ("before_activation", "none", 3, "better")
    markdown = published.files.markdown.read_text()
    assert "compared at each placement's own best settings (re-run on 3 fresh seeds" in markdown
    assert "| before_activation | 0.1 | adam | 0.001 | 2 |" in markdown


def test_publish_reads_an_adaptive_sweeps_calls_from_its_parent_run(store):
    uri, runs = store
    spec = parse_spec(
        {
            "name": "publish-adaptive",
            "search": {
                "placement": ["after_dropout", "none"],
                "dropout": [0.5],
                "optimizer": [{"name": "adam"}],
                "seeds": {"min": 3, "max": 6},
            },
            "training": {"epochs": 2},
            "tracking": {"experiment": "publish-adaptive"},
        }
    )
    tracker = SweepTracker(uri, spec, "publish-adaptive-1", runs)
    tracker.start_sweep()
    configs = [
        {"placement": p, "dropout": 0.5, "optimizer": "adam", "seed": s}
        for s in range(3)
        for p in ("after_dropout", "none")
    ]
    record_trials(
        tracker, configs, lambda c: 0.9 - 0.05 * (c["placement"] == "after_dropout") + 0.01 * c["seed"]
    )
    call = Call("after_dropout", "none", "worse", 1, 3, 3, -5.0, -5.1, -4.9, 0.99, 3)
    tracker.record_adaptive(call_tags([call]), {"adaptive.trials_run": 6, "adaptive.trials_saved": 6})
    published = publish_report(MlflowClient(uri), "publish-adaptive-1", runs / "report", log=False)
    assert set(published.trials["phase"]) == {""}
    adaptive = published.analysis.adaptive
    assert adaptive is not None and adaptive.trials_saved == 6
    assert [(c.placement, c.outcome, c.low, c.high) for c in adaptive.calls] == [
        ("after_dropout", "worse", -5.1, -4.9)
    ]
    markdown = published.files.markdown.read_text()
    assert "## Adaptive seeds" in markdown and "6 trials run, 6 saved" in markdown
    assert published.analysis.own_settings is None


def test_the_parent_runs_description_opens_with_the_short_answer(store):
    uri, runs = store
    spec = parse_spec(
        {
            "name": "publish-note",
            "search": {
                "placement": ["after_dropout", "none"],
                "dropout": [0.5],
                "optimizer": [{"name": "adam"}],
                "seeds": 3,
            },
            "training": {"epochs": 2},
            "tracking": {"experiment": "publish-note"},
        }
    )
    tracker = SweepTracker(uri, spec, "publish-note-1", runs)
    tracker.start_sweep()
    configs = [
        {"placement": p, "dropout": 0.5, "optimizer": "adam", "seed": s}
        for s in range(3)
        for p in ("after_dropout", "none")
    ]
    record_trials(
        tracker, configs, lambda c: 0.9 - (0.05 + 0.003 * c["seed"]) * (c["placement"] == "after_dropout")
    )
    client = MlflowClient(uri)
    published = publish_report(client, "publish-note-1", runs / "report", log=True)
    note = client.get_run(published.record.parent_run_id).data.tags["mlflow.note.content"]
    answer = short_answer(published.analysis)
    assert answer[0].startswith("after_dropout is worse than none by at least 4.2 points (\u0394 \u22125.3")
    assert note.startswith("## The answer\n\n" + "\n".join(f"- {s}" for s in answer) + "\n\n")
    assert "## Verdict\n\n- " in note


# --- the answer first: one sentence per placement and a forest plot ---------------------------


def test_the_report_opens_with_one_sentence_per_placement_and_the_forest_plot(tmp_path, sweep6):
    trials, curves, analysis = sweep6
    files = write_report(analysis, trials, curves, tmp_path)
    markdown = files.markdown.read_text()
    answer = short_answer(analysis)
    assert answer == (
        "before_activation is equivalent to none within \u00b11 point(s) (\u0394 +0.1, "
        "simultaneous 97.5% CI \u22120.8 to 0.9).",
        "after_activation is equivalent to none within \u00b11 point(s) (\u0394 +0.1, "
        "simultaneous 97.5% CI \u22120.4 to 0.7).",
        "after_dropout is worse than none by at least 2.5 points (\u0394 \u22122.8, simultaneous 97.5% CI "
        "\u22123.1 to \u22122.5).",
        "none is the reference (89.9% final validation accuracy, n = 6 seeds).",
    )
    top = markdown.split("## Verdict")[0]
    assert top.index("## The answer") < top.index(answer[0]) < top.index("](forest.png)")
    section = markdown.split("## Per placement")[1].split("\n## ")[0]
    assert "](final_accuracy.png)" in section and "](learning_curves.png)" in section
    assert "](placement_dropout.png)" in markdown.split("by placement \u00d7 dropout")[1].split("\n## ")[0]
    assert "## Figures" not in markdown  # every figure sits beside what it shows
    page = files.html.read_text()
    assert page.index("<h2>The answer</h2>") < page.index("<figure>") < page.index("<h2>Verdict</h2>")
    assert "forest" not in page.split("<figure>")[2]  # the forest plot comes first
    assert json.loads(files.json.read_text())["answer"] == list(answer)


def test_seeds_to_resolve_are_given_only_for_comparisons_the_sweep_cannot_tell(sweep6):
    _, _, analysis = sweep6
    table = render_markdown(analysis).split("## Paired comparisons")[1].split("\n## ")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert rows["after_dropout"].endswith("| worse | decided |")
    assert rows["before_activation"].endswith("| equivalent | decided |")
    assert "for the comparisons this sweep cannot tell" in table


def test_the_forest_plot_has_a_row_per_comparison_with_its_simultaneous_interval(tmp_path, sweep6):
    _, _, analysis = sweep6
    rows = forest_rows(analysis)
    assert [(r.label, r.outcome) for r in rows] == [
        ("before_activation \u2212 none", "equivalent"),
        ("after_activation \u2212 none", "equivalent"),
        ("after_dropout \u2212 none", "worse"),
    ]
    assert rows[2].diff is analysis.comparisons[2].diff
    assert plot_forest(analysis, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes().startswith(PNG_MAGIC)


def test_where_the_effect_depends_on_the_cell_the_answer_and_the_forest_go_by_cell(tmp_path):
    trials, curves = make_sweep(seeds=6)
    # after_dropout is 3 points worse only at dropout 0.5
    gentle = (trials["placement"] == "after_dropout") & (trials["dropout"] == 0.1)
    trials.loc[gentle, "final_val_accuracy"] += 0.03
    analysis = analyse(trials, curves)
    (depends,) = [i for i in analysis.interactions if i.depends]
    assert depends.placement == "after_dropout"
    rows = [r for r in forest_rows(analysis) if r.label.startswith("after_dropout")]
    assert [r.label for r in rows] == [
        f"after_dropout \u2212 none: dropout {d:g}, {o}" for d in (0.1, 0.5) for o in ("adam", "sgd")
    ]
    assert [r.diff for r in rows] == [c.diff for c in depends.cells]
    sentence = short_answer(analysis)[2]
    assert sentence.startswith("after_dropout against none depends on the cell: worse at dropout 0.5")
    every_pair = short_answer(analyse(trials, curves, reference="all"))
    assert (
        every_pair[2]
        == "after_dropout depends on the cell against before_activation, after_activation and none."
    )
    assert every_pair[3].endswith("; depends on the cell against after_dropout.")
    cells = json.loads(write_report(analysis, trials, curves, tmp_path).json.read_text())["outcomes"]["cells"]
    worse = {
        (c["dropout"], c["optimizer"])
        for c in cells
        if c["placement"] == "after_dropout" and c["outcome"] == "worse"
    }
    assert worse == {(0.5, "adam"), (0.5, "sgd")}


def test_with_every_pair_compared_each_placement_is_said_against_every_other(sweep6):
    trials, curves, _ = sweep6
    answer = short_answer(analyse(trials, curves, reference="all"))
    assert len(answer) == 4
    assert answer[2] == "after_dropout is worse than before_activation, after_activation and none."
    assert answer[3].startswith("none ") and "is better than after_dropout" in answer[3]


def test_with_nothing_usable_the_answer_says_so_and_the_forest_plot_is_skipped(tmp_path, sweep):
    trials, curves, _ = sweep
    failed = trials.assign(status="FAILED")
    analysis = analyse(failed, curves)
    assert short_answer(analysis) == (
        "No trial finished with a finite final validation accuracy; there is nothing to compare.",
    )
    markdown = write_report(analysis, failed, curves, tmp_path).markdown.read_text()
    assert "skipped, no placements were compared" in markdown.split("## Verdict")[0]
    assert not (tmp_path / "forest.png").exists()
