"""Each measurement of scaling.py runs in a child process: the parent's side (`spawn`: start it,
account the CPU around it, read its JSON line) and the child's (`report_from_child`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bench import LOGS_DIR
from scaling_meters import OtherWork, machine_ticks

SCRIPT = Path(__file__).resolve().with_name("scaling.py")  # what a child runs, with `--child ...`


def spawn(command: list[str], env: dict[str, str], cwd: Path, label: str, stamp: str) -> dict[str, Any]:
    """Run this script as a child (`--child ...`) in `cwd`; its last stdout line is its JSON."""
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOGS_DIR / f"scaling-{stamp}-{label}.log"
    env = {k: v for k, v in env.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    ticks, other = machine_ticks(), OtherWork()
    other.start()
    started = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), *command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    wall = time.perf_counter() - started
    other.stop()  # did other work share the CPU? (servers, Ray nodes and child: our descendants)
    busy, total = (a - b for a, b in zip(machine_ticks(), ticks, strict=True))
    machine_core_s = busy / total * wall * len(os.sched_getaffinity(0)) if total else 0.0
    other_core_s = other.other_s
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-20:]
        print(f"  {label} failed (exit {proc.returncode}); the end of {log_path}:", file=sys.stderr)
        print("    " + "\n    ".join(tail), file=sys.stderr)
        return {"label": label, "error": f"exit {proc.returncode}", "log": str(log_path)}
    result: dict[str, Any] = json.loads(lines[-1])
    result.update({"label": label, "process_s": wall, "log": str(log_path)})
    result["machine_busy_core_s"] = machine_core_s
    result["own_core_s"] = other.mine_s
    result["other_work_core_s"] = other_core_s  # CPU used by processes this benchmark did not start
    result["other_work_frac"] = other_core_s / (wall * len(os.sched_getaffinity(0)))
    return result


def report_from_child(measure: Callable[[], dict[str, Any]]) -> None:
    """Run one measurement and write its numbers as one JSON line on the real stdout."""
    # Ray and TensorFlow print to stdout; keep it for the result line alone.
    sys.stdout.flush()
    result_out: TextIO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    result = measure()
    result_out.write(json.dumps(result) + "\n")
    result_out.flush()
