"""The spec's analysis section: declared before the data, validated, and read back for the report."""

from __future__ import annotations

import pytest

from sweep.publish import _analysis_settings
from sweep.results import SweepRecord
from sweep.spec import SpecError, parse_spec


def test_defaults_are_the_none_control_or_all_pairs_and_a_one_point_margin():
    settings = parse_spec({"name": "x"}).analysis
    assert settings.reference is None and settings.equivalence_margin == 1.0


def test_reference_must_be_a_searched_placement_or_all():
    with pytest.raises(SpecError) as err:
        parse_spec(
            {
                "name": "x",
                "search": {"placement": ["before_activation", "none"]},
                "analysis": {"reference": "after_dropout"},
            }
        )
    assert err.value.errors == [
        "analysis.reference: must be one of the searched placements (before_activation, none) or all "
        "(got 'after_dropout')"
    ]
    with pytest.raises(SpecError, match=r"analysis.reference: must be one of .* or 'all' \(got 'best'\)"):
        parse_spec({"name": "x", "analysis": {"reference": "best"}})
    assert parse_spec({"name": "x", "analysis": {"reference": "all"}}).analysis.reference == "all"


def test_margin_must_be_positive_points():
    with pytest.raises(SpecError, match=r"analysis.equivalence_margin: must be > 0 \(got 0\)"):
        parse_spec({"name": "x", "analysis": {"equivalence_margin": 0}})


def record(spec_yaml: str | None) -> SweepRecord:
    return SweepRecord("s", "run", "0", "FINISHED", "FINISHED", 4, spec_yaml)


def test_the_report_reads_the_section_from_the_recorded_spec():
    settings = _analysis_settings(record("name: x\nanalysis:\n  reference: all\n  equivalence_margin: 0.5\n"))
    assert (settings.reference, settings.equivalence_margin) == ("all", 0.5)


@pytest.mark.parametrize("spec_yaml", [None, "name: x\n", "[not, a, mapping]", "analysis: {margin: 2}"])
def test_sweeps_without_a_readable_section_get_the_defaults(spec_yaml):
    settings = _analysis_settings(record(spec_yaml))
    assert (settings.reference, settings.equivalence_margin) == (None, 1.0)
