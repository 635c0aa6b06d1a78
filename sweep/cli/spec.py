"""Commands about a spec alone: `validate`, `schema`, `show-model`; none starts Ray or MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sweep.cli.root import Overrides, console, fail, load
from sweep.spec import PLACEMENTS, SweepSpec
from sweep.training.keras_setup import tensorflow_quiet


def validate(
    file: Annotated[Path, typer.Argument(help="Spec file (YAML or JSON).")],
    set_: Overrides = None,
) -> None:
    """Check a spec and the data it reads; print the trial count or every error (exit 2)."""
    spec = load(file, set_)
    if spec.dataset.reads_data or spec.model.kind == "python":  # read it now, not mid-sweep
        from sweep.data import DataError, load_sweep_data

        try:
            data = load_sweep_data(spec)
        except DataError as err:
            fail([f"{file}: {err}"])
        if spec.model.kind == "python":  # built for each placement, as the runner checks it
            from sweep.builders import check_builder

            with tensorflow_quiet():
                problems = check_builder(spec, data.input_shape, data.n_classes)
            if problems:
                fail([f"{file}: {line}" for line in problems])
    console.print(f"valid: {spec.trial_count} trials ({spec.describe_count()})", highlight=False)


def schema() -> None:
    """Print the spec's JSON Schema (for editors)."""
    print(json.dumps(SweepSpec.model_json_schema(mode="validation"), indent=2))


def show_model(
    file: Annotated[Path, typer.Argument(help="Spec file.")],
    placement: Annotated[str, typer.Option(help=f"One of {', '.join(PLACEMENTS)}.")] = "before_activation",
    dropout: Annotated[float | None, typer.Option(help="Dropout rate (default: the spec's first).")] = None,
) -> None:
    """Print the network one trial would build, one line per layer."""
    spec = load(file)
    if placement not in PLACEMENTS:
        fail([f"--placement: must be one of {', '.join(PLACEMENTS)} (got {placement!r})"])
    rate = dropout
    if rate is None:
        rate = spec.search.dropout[0] if isinstance(spec.search.dropout, list) else spec.search.dropout.low
    if not 0 <= rate < 1:
        fail([f"--dropout: must be >= 0 and < 1 (got {rate})"])
    from sweep.data import DataError, load_dataset

    try:
        data = load_dataset(spec.dataset, image=spec.model.image_rows)
    except DataError as err:
        fail([str(err)])
    from sweep.refs import RefError

    problem = None
    with tensorflow_quiet():  # stderr is /dev/null inside: errors are shown after it
        from sweep.models import build_model, describe_model

        try:
            model = build_model(spec.model, placement, rate, data.input_shape, data.n_classes)
        except RefError as err:  # the user's builder
            problem = f"{file}: {err}"
    if problem is not None:
        fail([problem])
    kind = spec.model.builder if spec.model.kind == "python" else spec.model.kind
    table = Table(title=f"{kind} · {placement} · dropout {rate:g}")
    table.add_column("#", justify="right")
    table.add_column("layer")
    table.add_column("class")
    table.add_column("output shape")
    for i, (name, cls, shape) in enumerate(describe_model(model)):
        table.add_row(str(i), name, cls, shape)
    console.print(table)
    console.print(f"parameters: {model.count_params():,}")
