"""scaling.py's report as tables on the terminal."""

from __future__ import annotations

from typing import Any

from scaling_ceiling import GOAL_RESULTS_PER_S
from scaling_topology import GOAL_TOPOLOGY_RATIO


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(report: dict[str, Any]) -> None:
    """The report's tables and verdicts, topology first, then the ceiling."""
    from rich.console import Console

    console = Console()
    console.width = max(console.width, 190)
    topology = report.get("topology")
    if topology:
        _render_topology(console, report["grid"], topology)
    ceiling = report.get("ceiling")
    if ceiling and "error" not in ceiling:
        console.print(_ceiling_phases(ceiling))
        _render_ceiling_rest(console, ceiling)


def _render_topology(console: Any, grid: str, topology: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"topology: grid {grid} ({topology['runs'][0].get('trials', '?')} trials)")
    for column in (
        "round",
        "topology",
        "trials",
        "trial phase (s)",
        "trials/min",
        "x 1 node",
        "MLflow span (s)",
        "Σ build+fit (s)",
        "trials per node",
        "MLflow req/trial",
        "other work",
        "max |Δ acc|",
    ):
        table.add_column(column, justify="left" if column in ("topology", "trials per node") else "right")
    for r in topology["runs"]:
        if "error" in r:
            table.add_row(str(r["round"]), r["topology"], "-", f"[red]{r['error']}[/red]")
            continue
        table.add_row(
            str(r["round"]),
            f"{r['nodes']} x {r['cpus_per_node']} CPU",
            f"{r['finished']}/{r['trials']}",
            _fmt(r["trials_s"], ".1f"),
            _fmt(60 * r["trials_per_s"], ".1f"),
            _fmt(r.get("ratio_to_single_node"), ".2f"),
            _fmt(r["mlflow_span_s"], ".1f"),
            _fmt(r["train_time_sum_s"], ".1f"),
            ", ".join(f"{k}: {v}" for k, v in sorted(r["trials_per_node"].items())),
            _fmt(r["requests_per_trial"], ".1f"),
            f"{100 * r['other_work_frac']:.0f}%",
            _fmt(r["max_abs_diff_vs_first_run"], ".4f"),
        )
    console.print(table)
    s = topology["summary"]
    ratios = ", ".join(f"{x:.2f}" for x in s["ratios_by_round"])
    print(
        f"two 1-CPU nodes / one 2-CPU node, by round: {ratios}; median {_fmt(s['median_ratio'], '.2f')} "
        f"(goal >= {GOAL_TOPOLOGY_RATIO}: {'met' if s['goal_met'] else 'MISSED'}); "
        f"both nodes trained: {s['both_nodes_trained_in_2x1']}; "
        f"max |Δ final val_accuracy| over all runs: "
        f"{_fmt(s['max_abs_diff_val_accuracy_all_runs'], '.6f')}"
    )


def _ceiling_phases(ceiling: dict[str, Any]) -> Any:
    """The Tune phases of the ceiling, a row each."""
    from rich.table import Table

    table = Table(title="driver ceiling: instant trials through SweepTracker + TrialRecorder")
    for column in (
        "CPUs",
        "writes",
        "round",
        "results",
        "fit (s)",
        "drain after fit (s)",
        "results/s",
        "from 1st result",
        "Tune mid-80% /s",
        "writer busy",
        "req/trial",
        "mlflow CPU/req (ms)",
        "max backlog",
        "driver CPU",
        "mlflow CPU",
        "postgres CPU",
        "machine busy",
    ):
        table.add_column(column, justify="right")
    for p in ceiling["tune_phases"]:
        wall = p["total_s"]
        table.add_row(
            str(p["cpus"]),
            p["writes"],
            str(p["round"]),
            str(p["results"]),
            _fmt(p["fit_s"], ".1f"),
            _fmt(p["drain_after_fit_s"], ".2f"),
            _fmt(p["results_per_s"], ".0f"),
            _fmt(p["results_per_s_from_first_result"], ".0f"),
            _fmt(p["tune_delivery_per_s_mid80"], ".0f"),
            f"{100 * p['writer_busy_frac']:.0f}%",
            _fmt(p.get("requests_per_trial"), ".1f"),
            _fmt(p.get("mlflow_cpu_ms_per_request"), ".1f"),
            str(p["max_write_backlog"]),
            f"{100 * p['driver_cpu_s'] / wall:.0f}%",
            f"{100 * p['mlflow_cpu_s'] / wall:.0f}%",
            f"{100 * p['postgres_cpu_s'] / wall:.0f}%",
            f"{100 * p['machine_busy_frac']:.0f}%",
        )
    return table


def _render_ceiling_rest(console: Any, ceiling: dict[str, Any]) -> None:
    """The write side alone, the single requests, and the ceiling's verdict."""
    from rich.table import Table

    for alone in ceiling["write_side_alone"]:
        print(
            f"write side alone, {alone['writers']} writer thread(s): {alone['results']} results in "
            f"{alone['total_s']:.2f} s = {alone['results_per_s']:.0f} results/s, "
            f"{alone['requests_per_s']:.0f} requests/s; {alone['requests_per_trial']:.1f} requests "
            f"per trial of {alone['epochs']} epochs; server CPU per request: mlflow "
            f"{alone['mlflow_cpu_ms_per_request']:.1f} ms, "
            f"postgres {alone['postgres_cpu_ms_per_request']:.1f} ms"
        )
    table = Table(title="one request at a time (client round trip)")
    for column in ("request", "n", "median (ms)", "p90 (ms)"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for name, stats in ceiling["round_trips"].items():
        table.add_row(name, str(stats["n"]), f"{stats['median_ms']:.1f}", f"{stats['p90_ms']:.1f}")
    console.print(table)
    s = ceiling["summary"]
    print(f"other work during the ceiling child: {100 * ceiling['other_work_frac']:.0f}% of the cores")
    print(
        f"results/s (Tuner.fit start -> drain), real writes: {s['results_per_s_by_run']} "
        f"(goal >= {GOAL_RESULTS_PER_S:.0f}: {'met' if s['goal_met'] else 'MISSED'}); "
        f"every run FINISHED with every epoch: {s['every_run_finished_with_every_epoch']}"
    )
