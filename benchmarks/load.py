"""A bounded load test of the REST service on loopback (issue 16), larger than the test's.

Starts the stack the integration tests use (an `mlflow server` on SQLite, a one-node Ray head with
token auth, `sweep serve`), sends a fixed list of requests from concurrent clients
(tests/integration/api_load.py) and prints, per endpoint, requests, statuses and p50/p99/max
latency, the errors (must be 0) and the sweeps launched against the distinct Idempotency-Keys sent.
The run ends by itself. Usage:

    .venv/bin/python benchmarks/load.py [--clients 20] [--keys 10] [--resends 10] [--polls 1500]

Figures: docs/reliability.md. The JSON lands in benchmarks/results/load-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from api_load import plan, run_load  # noqa: E402
from api_server import TOKEN, ApiServer, serve_env, until_ended, write_data  # noqa: E402
from cluster import MlflowServer, RayCluster  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--keys", type=int, default=10, help="distinct Idempotency-Keys (sweeps launched)")
    parser.add_argument("--resends", type=int, default=10, help="times each key is submitted")
    parser.add_argument(
        "--polls", type=int, default=1500, help="status polls (plus a quarter each of trials, reports)"
    )
    parser.add_argument("--lists", type=int, default=200)
    args = parser.parse_args()

    spec = {
        "name": "load",
        "dataset": {"source": "csv", "path": "sets/train.csv", "target": "y"},
        "model": {"hidden_units": [8]},
        "search": {"placement": ["none"], "dropout": [0.0], "optimizer": [{"name": "adam"}], "seeds": 1},
        "training": {"epochs": 1, "batch_size": 32},
        "tracking": {"experiment": "load"},
    }
    with tempfile.TemporaryDirectory(prefix="sweep-load-") as tmp:
        root = Path(tmp)
        write_data(root / "data" / "sets")
        with (
            MlflowServer(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts") as tracking,
            RayCluster(root / "cluster", nodes=1, cpus_per_node=2) as cluster,
        ):
            env = serve_env(cluster, tracking.url, root / "data", SWEEP_RUNS_DIR=str(root / "runs"))
            with ApiServer(root / "serve", env) as service:
                keys = [f"load-{i}" for i in range(args.keys)]
                requests = plan(keys, args.resends, args.polls, args.lists)
                result = run_load(service.url, TOKEN, spec, requests, args.clients)
                summary = result.summary()
                summary |= {
                    "clients": args.clients,
                    "requests": len(requests),
                    "keys_sent": len(keys),
                    "sweeps_launched": len({i for ids in result.sweeps.values() for i in ids}),
                    "first_errors": result.errors[:5],
                    "cpus": os.cpu_count(),
                    "load_average_after": os.getloadavg(),
                }
                with service.client() as api:
                    for ids in result.sweeps.values():
                        for sweep_id in ids:
                            api.post(f"/v1/sweeps/{sweep_id}/cancel")
                            until_ended(api, sweep_id, timeout=600)
    print(json.dumps(summary, indent=2))
    out = ROOT / "benchmarks" / "results" / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
