"""Time one grid under several contenders, each in its own fresh process, and compare.

Contenders:
  ideal       every trial's bare build + compile + fit in one warm process, summed / cores
  naive       Ray Tune as its docs show it: function trainable, grid_search, MLflowLoggerCallback
  kerastuner  keras_tuner.GridSearch over the same space (sequential, one process)
  sweep       sweep.runner.run_sweep with the product's defaults
  sweep-warm  the same as a driver's second sweep: Ray up and the MLflow store created beforehand
  floor       start-up alone: Ray + Tune + one Keras import per worker, no data, MLflow or model
  sweep:NAME  sweep with extra overrides, from --variant NAME:KEY=VALUE[;KEY=VALUE...]

Usage: .venv/bin/python benchmarks/bench.py --grid seed --contenders ideal,naive,kerastuner,sweep
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

# The contenders live beside this file in bench_contenders.py, the grids in bench_grids.py; this
# file is the command line, the child that runs one contender, and the parent that compares them.
from bench_contenders import RUNNERS, grid_spec
from bench_grids import GRIDS, LOGS_DIR, RESULTS_DIR, ROOT

CONTENDERS = ("ideal", "naive", "kerastuner", "sweep", "sweep-warm", "floor")
DEFAULT_CONTENDERS = ("ideal", "naive", "kerastuner", "sweep")
CHILD_ENV = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
_ENV_KEY = re.compile(r"[A-Z_][A-Z0-9_]*")


def child(args: argparse.Namespace) -> None:
    """Run one contender and write its numbers as one JSON line on the real stdout."""
    # Ray, TensorFlow and KerasTuner all print to stdout; keep it for the result line alone.
    sys.stdout.flush()
    result_out: TextIO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    spec = grid_spec(args.grid, args.set)
    result = RUNNERS[args.only](spec, args.cores)
    result.update({"contender": args.label or args.only, "trials": spec.trial_count})
    result_out.write(json.dumps(result) + "\n")
    result_out.flush()


# --- the parent: spawn, compare, render --------------------------------------------------------


def split_assignments(items: list[str]) -> tuple[list[str], dict[str, str]]:
    """`key.path=value` go to the spec; `UPPER_CASE=value` go to the environment."""
    sets, env = [], {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE (got {item!r})")
        if _ENV_KEY.fullmatch(key.strip()):
            env[key.strip()] = value
        else:
            sets.append(item)
    return sets, env


def plan_contenders(args: argparse.Namespace) -> list[dict[str, Any]]:
    """What to spawn: name, runner, extra spec overrides and environment."""
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    if args.check_identical:
        names = ["ideal", *(n for n in names if n != "ideal")]
        if "sweep" not in names:
            names.append("sweep")
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        raise SystemExit(f"--contenders: unknown {', '.join(unknown)} (allowed: {', '.join(CONTENDERS)})")
    plans = [{"label": n, "runner": n, "set": [], "env": {}} for n in names]
    for variant in args.variant:
        name, sep, rest = variant.partition(":")
        if not sep or not name:
            raise SystemExit(f"--variant: expected NAME:KEY=VALUE[;KEY=VALUE...] (got {variant!r})")
        sets, env = split_assignments([p for p in rest.split(";") if p.strip()])
        plans.append({"label": f"sweep:{name}", "runner": "sweep", "set": sets, "env": env})
    return plans


def spawn(plan: dict[str, Any], args: argparse.Namespace, log_path: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--only",
        plan["runner"],
        "--label",
        plan["label"],
        "--grid",
        args.grid,
        "--cores",
        str(args.cores),
    ]
    for item in [*args.set, *plan["set"]]:
        command += ["--set", item]
    env = {**os.environ, **CHILD_ENV, **args.env_vars, **plan["env"]}
    env.pop("MLFLOW_TRACKING_URI", None)  # every contender writes to its own temporary store
    started = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    process_s = time.perf_counter() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
        where = log_path.relative_to(ROOT)
        print(f"  {plan['label']} failed (exit {proc.returncode}); the end of {where}:", file=sys.stderr)
        print("    " + "\n    ".join(tail), file=sys.stderr)
        return {"contender": plan["label"], "error": f"exit {proc.returncode}", "log": str(log_path)}
    result: dict[str, Any] = json.loads(lines[-1])
    result.update({"process_s": process_s, "log": str(log_path), "set": plan["set"], "env": plan["env"]})
    return result


def compare(results: list[dict[str, Any]]) -> None:
    """Add trials/min, the ratio to ideal and the largest val_accuracy gap to ideal."""
    ideal = next((r for r in results if r["contender"] == "ideal" and "error" not in r), None)
    for r in results:
        if "error" in r:
            continue
        r["trials_per_min"] = 60 * r["finished"] / r["wall_s"] if r["wall_s"] else None
        r["ratio_to_ideal"] = r["wall_s"] / ideal["wall_s"] if ideal else None
        if ideal and r is not ideal:
            common = sorted(set(r["val_accuracy"]) & set(ideal["val_accuracy"]))
            gaps = [abs(r["val_accuracy"][k] - ideal["val_accuracy"][k]) for k in common]
            r["max_abs_diff_vs_ideal"] = max(gaps) if gaps else None
            r["trials_compared"] = len(common)


def _proc_field(path: str, name: str) -> str | None:
    """The value of `name: value` in a /proc file (Linux), if there."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "ram_gb": round(int(mem_kb.split()[0]) / 1024**2, 1) if mem_kb else None,
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{
            p: version(p)
            for p in ("tensorflow", "keras", "ray", "mlflow", "keras-tuner", "scikit-learn", "numpy")
        },
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(results: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=title,
        caption="max |Δ acc|: largest gap to ideal's final val_accuracy over the trials both finished",
    )
    for column in (
        "contender",
        "trials",
        "wall (s)",
        "trials/min",
        "x ideal",
        "peak RSS/worker (MB)",
        "max |Δ acc|",
    ):
        table.add_column(column, justify="left" if column == "contender" else "right")
    for r in results:
        if "error" in r:
            table.add_row(r["contender"], "-", f"[red]{r['error']}[/red]", "-", "-", "-", "-")
            continue
        table.add_row(
            r["contender"] if r.get("round", 1) == 1 else f"{r['contender']} (round {r['round']})",
            f"{r['finished']}/{r['trials']}",
            _fmt(r["wall_s"], ".1f"),
            _fmt(r["trials_per_min"], ".1f"),
            _fmt(r["ratio_to_ideal"], ".2f"),
            _fmt(r["peak_rss_mb"], ".0f"),
            _fmt(r.get("max_abs_diff_vs_ideal"), ".4f"),
        )
    console = Console()
    console.width = max(console.width, 110)  # not squeezed to 80 columns when piped to a file
    console.print(table)


def summarise_rounds(results: list[dict[str, Any]]) -> None:
    """Each contender's ratio to the same round's ideal, round by round, and the median."""
    import statistics

    labels = dict.fromkeys(r["contender"] for r in results if r["contender"] != "ideal")
    for label in labels:
        ratios = [r["ratio_to_ideal"] for r in results if r["contender"] == label and r.get("ratio_to_ideal")]
        if ratios:
            each = ", ".join(f"{x:.2f}" for x in ratios)
            print(f"{label}: x ideal by round {each}; median {statistics.median(ratios):.2f}")


def parent(args: argparse.Namespace) -> int:
    spec = grid_spec(args.grid, args.set)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    plans = plan_contenders(args)
    title = (
        f"grid {args.grid}: {spec.trial_count} trials ({spec.describe_count()}), "
        f"{spec.training.epochs} epochs, batch {spec.training.batch_size}, "
        f"{spec.dataset.n_samples} rows; {args.cores} cores"
    )
    print(title, file=sys.stderr)
    machine = machine_info()  # the load average before the runs: is the machine quiet?
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    # Rounds interleave the contenders (ideal, sweep, ideal, sweep, ...) so that each ratio compares
    # runs made minutes apart: this VM's speed drifts by up to 1.8x over an hour.
    for round_no in range(1, args.rounds + 1):
        this_round = []
        for plan in plans:
            name = plan["label"].replace(":", "-") + (f"-r{round_no}" if args.rounds > 1 else "")
            print(f"  running {plan['label']} (round {round_no}) ...", file=sys.stderr, flush=True)
            result = spawn(plan, args, LOGS_DIR / f"{args.grid}-{stamp}-{name}.log")
            result["round"] = round_no
            if "error" not in result:
                print(f"  {plan['label']}: {result['wall_s']:.1f} s", file=sys.stderr, flush=True)
            this_round.append(result)
        compare(this_round)
        results.extend(this_round)
    render(results, title)
    if args.rounds > 1:
        summarise_rounds(results)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{args.grid}-{stamp}.json"
    report = {
        "grid": args.grid,
        "title": title,
        "trials": spec.trial_count,
        "epochs": spec.training.epochs,
        "batch_size": spec.training.batch_size,
        "overrides": [*GRIDS[args.grid], *args.set],
        "env": args.env_vars,
        "cores": args.cores,
        "started": stamp,
        "machine": {**machine, "load_average_after": os.getloadavg()},
        "contenders": results,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    if args.check_identical:
        sweep = next((r for r in results if r["contender"] == "sweep"), {})
        diff = sweep.get("max_abs_diff_vs_ideal")
        ok = diff is not None and diff <= args.tolerance
        print(
            f"check-identical: sweep vs ideal, max |Δ final val_accuracy| = {_fmt(diff, '.6f')} over "
            f"{sweep.get('trials_compared', 0)} trials (tolerance {args.tolerance:g}): "
            f"{'OK' if ok else 'FAILED'}"
        )
        return 0 if ok else 1
    return 0 if all("error" not in r for r in results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grid", choices=sorted(GRIDS), default="seed")
    parser.add_argument(
        "--contenders",
        default=",".join(DEFAULT_CONTENDERS),
        help=f"comma-separated, from {', '.join(CONTENDERS)}",
    )
    parser.add_argument("--cores", type=int, default=2, help="CPUs given to Ray, and the ideal's divisor")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every contender this many times, interleaved"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="spec override for every contender, e.g. training.epochs=10",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment variable for every contender, e.g. TUNE_RESULT_BUFFER_LENGTH=10",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[;...]",
        help="an extra sweep contender; UPPER_CASE keys are environment variables, "
        "dotted keys spec overrides, e.g. 'spe1:training.steps_per_execution=1'",
    )
    parser.add_argument(
        "--check-identical",
        action="store_true",
        help="run ideal and sweep, and fail if their final val_accuracy differ",
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.0, help="largest |Δ val_accuracy| --check-identical accepts"
    )
    parser.add_argument("--only", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cores < 1:
        parser.error(f"--cores: must be >= 1 (got {args.cores})")
    if args.rounds < 1:
        parser.error(f"--rounds: must be >= 1 (got {args.rounds})")
    if args.only:
        child(args)
        return 0
    not_env, args.env_vars = split_assignments(args.env)
    if not_env:
        parser.error(f"--env: expected NAME=VALUE with an upper-case NAME (got {', '.join(not_env)})")
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
