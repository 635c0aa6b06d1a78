"""An adaptive sweep's sequential calls, read from its parent run's tags and metrics."""

from __future__ import annotations

import json
import math

from trial_tables import make_trials

from sweep.adaptive import Call, call_tags
from sweep.analysis import adaptive_seeds, analyse
from sweep.report import render_html, render_markdown

nan = math.nan
CALLS = (
    Call("after_dropout", "none", "worse", 1, 3, 12, -3.1, -4.2, -2.0, 0.994, 3),
    Call("before_activation", "none", "cannot tell", 4, 6, 24, 0.4, -0.9, 1.7, 0.998, 6),
    Call("after_activation", "none", "cannot tell", 1, 3, 2, 0.3, nan, nan, 0.994, 2),
)
TAGS = {
    **call_tags(CALLS),
    "sweep.state": "finished",
    "adaptive": "not a call",
}
METRICS = {"adaptive.trials_run": 72.0, "adaptive.trials_saved": 48.0, "placement.none.failed_share": 0.0}


def test_calls_and_counts_are_read_from_the_parent_runs_tags_and_metrics():
    record = adaptive_seeds(TAGS, METRICS)
    assert record is not None
    calls = {(c.placement, c.reference): c.outcome for c in record.calls}
    assert calls == {
        ("after_dropout", "none"): "worse",
        ("before_activation", "none"): "cannot tell",
        ("after_activation", "none"): "cannot tell",  # too few seeds decides nothing
    }
    assert (record.trials_run, record.trials_saved) == (72, 48)
    worse = next(c for c in record.calls if c.placement == "after_dropout")
    assert (worse.look, worse.seeds, worse.pairs, worse.low, worse.high) == (1, 3, 12, -4.2, -2.0)
    assert (
        worse.text
        == "worse at look 1 (3 seed(s), 12 pairs): -3.10 points, interval -4.20 to -2.00 (at 99.4%)"
    )
    assert "no interval" in next(c for c in record.calls if c.placement == "after_activation").text


def test_calls_are_json_and_prose_is_not_read_as_a_call():
    assert json.loads(TAGS["adaptive.after_activation.vs.none"])["low"] is None
    old = {"adaptive.after_dropout.vs.none": "after_dropout vs none: worse at look 1 (3 seeds, 12 pairs)"}
    record = adaptive_seeds(old, {})
    assert record is not None
    [call] = record.calls
    assert call.outcome == "cannot tell" and call.text.startswith("not read as a call: ")


def test_a_sweep_that_was_not_adaptive_has_no_record():
    assert adaptive_seeds({"sweep.state": "finished"}, {"target_accuracy": 0.9}) is None
    assert adaptive_seeds({}, {"adaptive.trials_run": 10.0}) is not None  # a look before any call


def test_the_report_lists_the_calls_the_savings_and_which_intervals_hold():
    analysis = analyse(make_trials({"after_dropout": -0.03}, seeds=3), adaptive=adaptive_seeds(TAGS, METRICS))
    markdown = render_markdown(analysis)
    section = markdown.split("## Adaptive seeds")[1].split("\n## ")[0]
    assert "| after_dropout | none | worse | worse at look 1" in section
    assert "72 trials run, 48 saved against running the maximum seeds everywhere" in section
    assert "the sequential calls (Adaptive seeds) are the ones that keep the error rate" in section
    assert "fixed-sample intervals shown elsewhere are descriptive" in markdown.split("## Verdict")[0]
    assert any("sequential calls" in s and "descriptive" in s for s in analysis.verdict)
    assert markdown.index("## Adaptive seeds") < markdown.index("## Paired comparisons")
    assert "<span class='status worse'>worse</span>" in render_html(analysis)
    data = json.loads(json.dumps(analysis.to_dict(), allow_nan=False))
    assert data["adaptive"]["trials_saved"] == 48


def test_without_a_record_the_report_has_no_adaptive_section():
    analysis = analyse(make_trials(seeds=2))
    assert analysis.adaptive is None
    assert "Adaptive seeds" not in render_markdown(analysis)
    assert not any("sequential calls" in s for s in analysis.verdict)
