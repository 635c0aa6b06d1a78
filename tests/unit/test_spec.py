import json
import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from sweep.spec import SpecError, SweepSpec, apply_overrides, load_spec, parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def errors_of(data: object) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return caught.value.errors


def minimal(**parts: object) -> dict:
    return {"name": "t", **parts}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_valid(path: Path) -> None:
    spec = load_spec(path)
    assert spec.trial_count >= 1


def test_seed_example_counts_72_trials() -> None:
    spec = load_spec(EXAMPLES / "seed.yaml")
    assert spec.trial_count == 4 * 3 * 2 * 3
    assert spec.describe_count() == "4 placements x 3 dropout x 2 optimizers x 3 seeds"


def test_defaults_fill_a_minimal_spec() -> None:
    spec = parse_spec(minimal())
    assert spec.search.placement == ["before_activation", "after_activation", "after_dropout", "none"]
    assert spec.dataset.source == "synthetic"


def test_dropout_out_of_range_names_index_rule_and_value() -> None:
    errs = errors_of(minimal(search={"dropout": [0.0, 0.25, 1.5]}))
    assert errs == ["search.dropout[2]: must be >= 0 and < 1 (got 1.5)"]


def test_unknown_key_is_an_error_with_the_allowed_fields() -> None:
    (err,) = errors_of(minimal(training={"epoch": 3}))
    assert err.startswith("training.epoch: unknown field (allowed: epochs, batch_size")


def test_unknown_top_level_key_is_an_error() -> None:
    (err,) = errors_of(minimal(trainig={}))
    assert err.startswith("trainig: unknown field (allowed: name, dataset")


def test_bad_name_says_what_is_allowed() -> None:
    (err,) = errors_of({"name": "My_Sweep"})
    assert err.startswith("name: must be 1-64 lowercase letters, digits and dashes")
    assert "'My_Sweep'" in err


def test_missing_name_is_reported() -> None:
    assert errors_of({}) == ["name: required field is missing"]


def test_bad_placement_lists_the_choices() -> None:
    (err,) = errors_of(minimal(search={"placement": ["sideways"]}))
    assert err.startswith("search.placement[0]: must be one of 'before_activation'")
    assert "(got 'sideways')" in err


def test_optimizer_argument_of_another_optimizer_is_rejected() -> None:
    (err,) = errors_of(minimal(search={"optimizer": [{"name": "adam", "momentum": 0.9}]}))
    assert err.startswith("search.optimizer[0].momentum: not an argument of adam (allowed:")


def test_negative_learning_rate_names_the_bound() -> None:
    (err,) = errors_of(minimal(search={"optimizer": [{"name": "sgd", "learning_rate": -1}]}))
    assert err == "search.optimizer[0].learning_rate: must be > 0 (got -1)"


def test_every_error_is_reported_at_once() -> None:
    errs = errors_of(
        minimal(
            training={"epochs": 0, "batch_size": 0},
            search={"dropout": [2.0], "seeds": 0},
        )
    )
    assert len(errs) == 4


def test_grid_search_refuses_a_dropout_range() -> None:
    (err,) = errors_of(minimal(search={"dropout": {"low": 0.1, "high": 0.5}}))
    assert err.startswith("search.dropout: grid search needs a list of rates")


def test_dropout_range_must_be_ordered() -> None:
    errs = errors_of(minimal(strategy={"algorithm": "random"}, search={"dropout": {"low": 0.5, "high": 0.1}}))
    assert any("low must be < high (got low=0.5, high=0.1)" in e for e in errs)


def test_random_search_counts_blocks_times_placements_times_seeds() -> None:
    spec = parse_spec(
        minimal(
            strategy={"algorithm": "random", "num_samples": 5},
            search={"dropout": {"low": 0.0, "high": 0.6}, "seeds": 2},
        )
    )
    assert spec.trial_count == 5 * 4 * 2


def test_binary_crossentropy_needs_two_classes() -> None:
    (err,) = errors_of(minimal(dataset={"source": "digits"}, training={"loss": "binary_crossentropy"}))
    assert err == "training.loss: binary_crossentropy needs 2 classes (dataset digits has 10)"


def test_cnn_needs_image_data() -> None:
    (err,) = errors_of(minimal(model={"kind": "cnn"}))
    assert err.startswith("model.kind: cnn needs image-shaped data")


def test_csv_needs_path_and_target() -> None:
    errs = errors_of(minimal(dataset={"source": "csv"}))
    assert "dataset.path: required when source is csv" in errs
    assert "dataset.target: required when source is csv (the label column)" in errs


def test_synthetic_only_fields_rejected_for_builtin_data() -> None:
    (err,) = errors_of(minimal(dataset={"source": "iris", "n_samples": 100}))
    assert err == "dataset.n_samples: only used with source synthetic (source is iris)"


def test_metric_and_mode_must_agree() -> None:
    (err,) = errors_of(minimal(strategy={"metric": "val_loss", "mode": "max"}))
    assert err == "strategy.mode: val_loss should be minimised (got max)"


def test_two_optimizers_of_one_name_get_distinct_labels() -> None:
    spec = parse_spec(
        minimal(
            search={
                "optimizer": [{"name": "sgd", "learning_rate": 0.1}, {"name": "sgd", "learning_rate": 0.01}]
            }
        )
    )
    assert list(spec.search.optimizers) == ["sgd-lr0.1", "sgd-lr0.01"]


def test_duplicate_explicit_labels_are_rejected() -> None:
    (err,) = errors_of(
        minimal(search={"optimizer": [{"name": "sgd", "label": "a"}, {"name": "adam", "label": "a"}]})
    )
    assert "share the label a" in err


def test_optimizer_settings_carry_decay_and_defaults() -> None:
    spec = load_spec(EXAMPLES / "seed.yaml")
    sgd = spec.search.optimizers["sgd"]
    assert sgd.fixed_rate == 0.1
    assert sgd.settings_at(0.1) == {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "decay": 1e-6}
    adam = spec.search.optimizers["adam"]
    assert adam.settings_at(adam.fixed_rate) == {"learning_rate": 0.001}


def test_spec_is_frozen() -> None:
    spec = parse_spec(minimal())
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]


def test_yaml_round_trip_gives_the_same_spec() -> None:
    spec = load_spec(EXAMPLES / "seed.yaml")
    assert parse_spec(yaml.safe_load(spec.to_yaml())) == spec


def test_top_level_must_be_a_mapping() -> None:
    assert errors_of([1, 2]) == ["the top level must be a mapping of fields (got list)"]
    assert errors_of(None) == ["the top level must be a mapping of fields (got empty)"]


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "nope.yaml")
    assert caught.value.errors == ["file not found"]


def test_unparsable_yaml_names_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsearch: [1, 2\n")
    with pytest.raises(SpecError) as caught:
        load_spec(bad)
    assert caught.value.errors[0].startswith("line ")
    assert "invalid YAML" in caught.value.errors[0]


def test_json_specs_load(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(minimal(training={"epochs": 2})))
    assert load_spec(path).training.epochs == 2


def test_overrides_set_nested_values_parsed_as_yaml() -> None:
    data = apply_overrides({"name": "x"}, ["training.epochs=3", "search.dropout=[0.1, 0.2]"])
    assert data == {"name": "x", "training": {"epochs": 3}, "search": {"dropout": [0.1, 0.2]}}


def test_override_without_equals_is_an_error() -> None:
    with pytest.raises(SpecError) as caught:
        apply_overrides({}, ["training.epochs"])
    assert caught.value.errors == ["--set training.epochs: expected key.path=value"]


def test_json_schema_names_every_section() -> None:
    schema = SweepSpec.model_json_schema()
    assert {"dataset", "model", "search", "training", "strategy", "resources", "tracking"} <= set(
        schema["properties"]
    )


def test_a_relative_data_path_is_taken_from_the_spec_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "spec.yaml").write_text(
        "name: csv-test\ndataset: {source: csv, path: data/train.csv, target: y}\n"
    )
    spec = load_spec(folder / "spec.yaml")
    assert spec.dataset.path == str(folder / "data" / "train.csv")


def test_an_overridden_data_path_stays_as_given(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("name: csv-test\ndataset: {source: csv, path: a.csv, target: y}\n")
    spec = load_spec(tmp_path / "spec.yaml", ["dataset.path=/data/b.csv"])
    assert spec.dataset.path == "/data/b.csv"


def test_max_failures_defaults_to_two_and_must_not_be_negative() -> None:
    assert parse_spec({"name": "x"}).resources.max_failures == 2
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "x", "resources": {"max_failures": -1}})
    assert "resources.max_failures" in str(err.value)


HAZARDS = {
    "aliases.yaml": (
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(
            f"{k}: &{k} [{', '.join([f'*{p}'] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "name: x\n",
        "line 2, column 8: invalid YAML: aliases (*name) are not allowed",
    ),
    "date.yaml": ("name: 2024-06-01\n", "line 1, column 7: invalid YAML: the date or timestamp '2024-06-01'"),
    "stamp.yaml": ("name: x\ndataset: {seed: 2001-12-14t21:59:43.10-05:00}\n", "line 2, column 17"),
    "binary.yaml": ("name: x\nmodel: !!binary aGVsbG8=\n", "the binary value 'aGVsbG8=' is not a spec value"),
    "object.yaml": ("name: !!python/object/apply:os.system [id]\n", "could not determine a constructor"),
    "deep.yaml": ("name: x\nk: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 20 levels"),
    "deep.json": (
        '{"name": "x", "k": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "line 1, column 39: nested deeper than 20 levels",
    ),
    "bigint.yaml": (
        "name: x\ndataset: {seed: " + "9" * 5000 + "}\n",
        "line 2, column 17: invalid YAML: an integer",
    ),
    "bigint.json": (
        '{"name": "x",\n "dataset": {"seed": ' + "9" * 5000 + "}}",
        "line 2, column 22: cannot be read",
    ),
    "set.yaml": (
        "name: x\nk: !!set {a, b}\n",
        "line 2, column 4: invalid YAML: a YAML !!set is not a spec value",
    ),
    "pairs.yaml": ("name: x\nk: !!pairs [a: 1]\n", "line 2, column 4: invalid YAML: a YAML !!pairs"),
    "duplicate.yaml": (
        "name: x\nsearch: {}\nsearch: {seeds: 1}\n",
        "line 3, column 1: invalid YAML: the key 'search' appears twice",
    ),
    "duplicate.json": (
        '{"name": "x", "search": {"seeds": 2}, "search": {"seeds": 1}}',
        "invalid JSON: the key 'search' appears twice in one object",
    ),
    "nested-duplicate.json": (
        '{"name": "x", "training": {"epochs": 3, "epochs": 5}}',
        "invalid JSON: the key 'epochs' appears twice in one object",
    ),
    "merge.yaml": ("name: x\nsearch: {<<: {seeds: 1}}\n", "line 2, column 10: invalid YAML: merge keys (<<)"),
    "intkey.yaml": ("name: x\n1: 2\n", "line 2, column 1: invalid YAML: the key 1 is not text"),
    "nul.yaml": (
        "name: x\nk: a\x00\n",
        "line 2, column 5: invalid YAML: the character #x0000 is not allowed",
    ),
    "many.yaml": (
        "name: x\nk: [" + ", ".join(["1"] * 20_000) + "]\n",
        "invalid YAML: more than 10,000 values",
    ),
    "huge.yaml": ("name: x\nk: " + "a" * (1024 * 1024 + 1) + "\n", "larger than 1024 KiB"),
}


@pytest.mark.parametrize("name", sorted(HAZARDS))
def test_yaml_and_json_hazards_are_refused_with_a_located_message(tmp_path: Path, name: str) -> None:
    text, message = HAZARDS[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert message in str(err.value)


def test_non_utf8_bytes_are_refused_with_their_position(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError, match="byte 9: not UTF-8 text"):
        load_spec(path)


# --- found by fuzzing (tests/unit/test_spec_fuzz.py) and by hand: each a located SpecError ---


def _errors(data: dict) -> list[str]:
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    return err.value.errors


REFUSED = {
    "inf": (
        {"search": {"optimizer": [{"name": "sgd", "decay": float("inf")}]}},
        "search.optimizer[0].decay: input should be a finite number (got inf)",
    ),
    "nan": (
        {"search": {"dropout": [float("nan")]}},
        "search.dropout[0]: input should be a finite number (got nan)",
    ),
    "seed": ({"dataset": {"seed": 2**40}}, "dataset.seed: must be <= 4294967295 (got 1099511627776)"),
    "units": (
        {"model": {"hidden_units": [10**12]}},
        "model.hidden_units[0]: must be >= 1 and <= 4096 (got 1000000000000)",
    ),
    "features": (
        {"dataset": {"n_features": 1}},
        "dataset.n_features: 1 features cannot separate 2 classes (at least 2 are needed)",
    ),
    "samples": (
        {"dataset": {"n_samples": 20, "n_classes": 11, "n_features": 8}},
        "dataset.n_samples: 20 rows cannot hold 11 classes (at least 22)",
    ),
    "values": (
        {"dataset": {"n_samples": 10_000_000, "n_features": 100}},
        "dataset.n_samples: 10000000 rows of 100 features are 1,000,000,000 values "
        "(at most 100,000,000 are generated)",
    ),
    "batch": (
        {"dataset": {"source": "iris"}, "training": {"batch_size": 128}},
        "training.batch_size: 128 is more than the 120 training rows of dataset iris "
        "(150 rows, validation_split 0.2); use at most 120",
    ),
    "split": (
        {"dataset": {"n_samples": 20, "validation_split": 0.95}},
        "dataset.validation_split: 0.95 of the 20 rows of dataset synthetic leaves 1 for training",
    ),
    "union branch": (
        {"training": {"steps_per_execution": "x"}},
        "training.steps_per_execution: input should be a valid integer",
    ),
    "odd key": ({"search": {"a b\n": 1}}, "search['a b\\n']: unknown field (allowed: "),
    "rates": (
        {"search": {"dropout": [i / 1000 for i in range(101)]}},
        "search.dropout: at most 100 rates (got 101)",
    ),
    "optimizers": (
        {"search": {"optimizer": [{"name": "sgd"}] * 101}},
        "search.optimizer: list should have at most 100 items after validation, not 101",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_values_no_setting_can_have_are_refused_where_they_are(case: str) -> None:
    data, message = REFUSED[case]
    errors = _errors({"name": "x", **data})
    assert any(e.startswith(message) for e in errors), errors


def test_at_most_100_error_lines_then_a_count() -> None:
    errors = _errors({"name": "x", "model": {"hidden_units": [0] * 32}, "search": {"dropout": [2.0] * 100}})
    assert len(errors) == 101
    assert errors[-1] == "... and 32 more errors"


def test_duplicate_checks_stay_fast_on_huge_lists() -> None:
    started = time.monotonic()
    with pytest.raises(SpecError, match="each placement at most once"):
        parse_spec({"name": "x", "search": {"placement": ["none"] * 100_000}})
    assert time.monotonic() - started < 5  # was quadratic: 20,000 optimizers took 54 s


def test_the_default_optimizer_is_labelled_so_the_saved_spec_reads_back_equal() -> None:
    spec = parse_spec({"name": "x"})
    assert spec.search.optimizer[0].label == "adam"
    assert parse_spec(yaml.safe_load(spec.to_yaml())) == spec


def test_override_values_follow_the_spec_files_rules() -> None:
    data = apply_overrides({"name": "x"}, ["name=2024-06-01", "search.seeds=[&a 1, *a]"])
    assert data["name"] == "2024-06-01"  # text, as quoted; not a date
    assert data["search"]["seeds"] == "[&a 1, *a]"  # an alias is not expanded: the text stays
    with pytest.raises(SpecError) as err:
        apply_overrides({"name": "x"}, ["a\nb"])
    assert err.value.errors == ["--set 'a\\nb': expected key.path=value"]


def test_text_that_is_not_unicode_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"name": "x", "tracking": {"experiment": "a\\ud800"}}')
    with pytest.raises(SpecError, match=r"tracking.experiment: not unicode text \(an unpaired surrogate"):
        load_spec(path)


LR_RANGE = {"name": "sgd", "learning_rate": {"low": 0.01, "high": 1.0}}


def drawn(**strategy: object) -> dict:
    return minimal(
        strategy={"algorithm": "random", "num_samples": 2, **strategy}, search={"optimizer": [LR_RANGE]}
    )


def test_a_learning_rate_range_is_refused_by_grid_search_naming_the_entry_and_the_rule() -> None:
    errs = errors_of(minimal(search={"optimizer": [{"name": "adam"}, LR_RANGE]}))
    assert errs == [
        "search.optimizer[1].learning_rate: grid search needs a fixed rate, not a range "
        "(use strategy.algorithm random or optuna for a range)"
    ]


@pytest.mark.parametrize(
    ("rate", "error"),
    [
        ({"low": 0, "high": 0.1}, "a log range needs low > 0 (got low=0.0)"),
        ({"low": -0.1, "high": 0.1, "log": False}, "a learning rate must be > 0 (got low=-0.1)"),
        ({"low": 0.1, "high": 0.1}, "low must be < high (got low=0.1, high=0.1)"),
        ({"low": 0.5, "high": 0.1}, "low must be < high (got low=0.5, high=0.1)"),
    ],
)
def test_a_bad_learning_rate_range_is_one_located_error(rate: dict, error: str) -> None:
    bad = minimal(
        strategy={"algorithm": "random"}, search={"optimizer": [{"name": "adam", "learning_rate": rate}]}
    )
    # One line: not also "input should be a valid number" from the union's number branch.
    assert errors_of(bad) == [f"search.optimizer[0].learning_rate: {error}"]


def test_a_learning_rate_range_names_its_unknown_keys() -> None:
    bad = minimal(
        search={"optimizer": [{"name": "adam", "learning_rate": {"low": 0.1, "high": 1, "scale": 2}}]}
    )
    (err,) = [e for e in errors_of(bad) if "scale" in e]
    assert err == "search.optimizer[0].learning_rate.scale: unknown field (allowed: low, high, log)"


def test_a_learning_rate_range_is_valid_for_random_and_optuna_and_draws_any_number_of_blocks() -> None:
    for algorithm in ("random", "optuna"):
        spec = parse_spec(drawn(algorithm=algorithm, num_samples=50))  # one dropout rate, yet 50 blocks
        (optimizer,) = spec.search.optimizer
        assert optimizer.rate_range is not None and optimizer.rate_range.log  # log by default
        assert optimizer.fixed_rate is None
        assert "(dropout, optimizer, learning rate)" in spec.describe_count()


def test_a_ranged_optimizers_default_label_names_its_range_never_a_drawn_rate() -> None:
    spec = parse_spec(drawn(num_samples=2) | {"search": {"optimizer": [LR_RANGE, {"name": "sgd"}]}})
    assert [o.label for o in spec.search.optimizer] == ["sgd-lr0.01-1", "sgd-lr0.01"]
    again = parse_spec(yaml.safe_load(spec.to_yaml()))  # the saved spec reads back equal
    assert again == spec
