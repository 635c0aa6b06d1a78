"""Scaling: two 1-CPU nodes against one 2-CPU node, and how many results/s one driver records.

Contenders:
  topology  bench.py's seed grid through run_sweep on a token-auth Ray cluster started by
            tests/integration/cluster.py: one node with 2 CPUs, then two nodes with 1 CPU each,
            interleaved rounds, MLflow server on PostgreSQL. Throughput = trials / trial phase.
  ceiling   trials that report E results at once and train nothing, through the engine's own
            recording path (SweepTracker + TrialRecorder as the Tuner's callback) into the same
            MLflow server: with real writes, with no-op writes (Tune alone), and the write side
            alone (a loop of SweepTracker calls), plus single-request round trips.

Every measurement runs in a fresh child process whose cwd is a temporary folder (Ray puts a
driver's cwd on its workers' sys.path). Usage:
  .venv/bin/python benchmarks/scaling.py                       # both, full size (~10 min)
  .venv/bin/python benchmarks/scaling.py --quick               # tiny sizes: a smoke test
  .venv/bin/python benchmarks/scaling.py --contenders ceiling --ceiling-cpus 2,8
"""

# The measurements live beside this file: scaling_topology.py and scaling_ceiling.py; what they
# measure with in scaling_meters.py, the child processes in scaling_child.py, the tables in
# scaling_render.py. This file is the command line and the parent that runs them.

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import GRIDS, RESULTS_DIR, ROOT, machine_info
from scaling_ceiling import ceiling_child, run_ceiling, summarise_ceiling
from scaling_child import report_from_child
from scaling_render import render
from scaling_topology import TOPOLOGIES, compare_topologies, run_topology, topology_child

sys.path.insert(0, str(ROOT / "tests" / "integration"))

CONTENDERS = ("topology", "ceiling")


def parent(args: argparse.Namespace) -> int:
    from cluster import MlflowServer, PostgresServer

    args.stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    machine = machine_info()  # the load average before the runs: is the machine quiet?
    report: dict[str, Any] = {
        "started": args.stamp,
        "quick": args.quick,
        "grid": args.grid,
        "grid_overrides": GRIDS[args.grid],
        "rounds": args.rounds,
        "ceiling": None,
        "topology": None,
    }
    with tempfile.TemporaryDirectory(prefix="scaling-") as name:
        tmp = Path(name)
        with (
            PostgresServer(tmp / "postgres") as postgres,
            MlflowServer(postgres.url, tmp / "artifacts") as mlflow,
        ):
            print(f"MLflow server {mlflow.url} on PostgreSQL (1 worker)", file=sys.stderr, flush=True)
            if "topology" in args.contenders:
                runs = run_topology(args, mlflow.url, tmp)
                report["topology"] = {"runs": runs, "summary": compare_topologies(runs)}
            if "ceiling" in args.contenders:
                pids = {"mlflow": mlflow._proc.pid, "postgres": postgres._proc.pid}  # type: ignore[union-attr]
                ceiling = run_ceiling(args, mlflow.url, pids, tmp)
                if "error" not in ceiling:
                    ceiling["summary"] = summarise_ceiling(ceiling)
                report["ceiling"] = ceiling
    report["machine"] = {**machine, "load_average_after": os.getloadavg()}
    report["settings"] = {
        "ceiling_trials": args.ceiling_trials,
        "ceiling_epochs": args.ceiling_epochs,
        "ceiling_cpus": args.ceiling_cpus,
        "ceiling_rounds": args.ceiling_rounds,
        "writers": args.writers,
        "mlflow_workers": 1,
    }
    render(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"scaling{'-quick' if args.quick else ''}-{args.stamp}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    failed = [r for r in (report["topology"] or {}).get("runs", []) if "error" in r]
    return 1 if failed or (report["ceiling"] and "error" in report["ceiling"]) else 0


def child(args: argparse.Namespace) -> None:
    """Run the measurement `--child` names in this process (spawned by the parent)."""
    measure = topology_child if args.child == "topology" else ceiling_child
    report_from_child(lambda: measure(args))


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    from sweep.settings import apply_environment

    apply_environment()  # the contenders below build Tune and the tracker as the runner does
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help=f"comma-separated, from {', '.join(CONTENDERS)}"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: grid tiny, 1 round, 8 x 5 results")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="seed", help="topology: bench.py's grid")
    parser.add_argument("--rounds", type=int, default=2, help="topology: rounds of (1 x 2 CPU, 2 x 1 CPU)")
    parser.add_argument("--ceiling-trials", type=int, default=40, help="ceiling: instant trials (x8)")
    parser.add_argument("--ceiling-epochs", type=int, default=50, help="ceiling: results per trial")
    parser.add_argument(
        "--ceiling-cpus",
        type=_int_list,
        default=[2],
        help="ceiling: local Ray CPUs = trials at once, e.g. 2,8",
    )
    parser.add_argument("--ceiling-rounds", type=int, default=2, help="ceiling: rounds of (no-op, real)")
    parser.add_argument(
        "--writers", type=_int_list, default=[1, 4], help="ceiling: writer threads for the write side alone"
    )
    for hidden in ("--child", "--address", "--tracking-uri", "--runs-dir", "--experiment", "--server-pids"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        parser.error(f"--contenders: unknown {', '.join(unknown)} (allowed: {', '.join(CONTENDERS)})")
    for name in ("rounds", "ceiling_trials", "ceiling_epochs", "ceiling_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be >= 1 (got {getattr(args, name)})")
    for name in ("ceiling_cpus", "writers"):
        if not getattr(args, name) or min(getattr(args, name)) < 1:
            parser.error(f"--{name.replace('_', '-')}: each must be >= 1 (got {getattr(args, name)})")
    if args.quick:
        args.grid, args.rounds = "tiny", 1
        args.ceiling_trials, args.ceiling_epochs, args.ceiling_rounds = 8, 5, 1
    args.topologies = list(TOPOLOGIES)
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
