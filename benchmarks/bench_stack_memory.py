"""Resident memory of ``make run``'s stack, idle and during a backfill, with MLflow's job runner
off (as ``make run`` starts it) against on (MLflow 3's default), in the same run.

Each repetition starts the stack as ``make run`` does (``dagster dev`` + ``mlflow server
--workers 1`` on free loopback ports: ``mlops_assets_tests.stack.local_stack``), once with the
MLflow server's environment as ``make run`` sets it (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``)
and once with the job runner on. Idle: once the code location has loaded, it waits
``--settle`` seconds and sums the resident (VmRSS) and proportional (Pss, shared pages split
between their users) set sizes of every process that uses the stack's Dagster home, three
samples a second apart, median. With ``--backfill LAST`` the lean stack then backfills every
asset up to the month LAST from the GraphQL API (what *Materialize all* launches) and reports
the peak of the same sums, sampled every second, runs included.
Prints JSON: each configuration's medians over the repetitions and their processes.
Usage: python -m benchmarks.bench_stack_memory [--repeats N] [--settle S] [--backfill LAST]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.bench_ui_backfill import (
    Process,
    every_asset_and_month,
    landing_through,
    launch_backfill,
    stack_processes,
    wait_for_backfill,
)
from mlops_assets.landing import layout
from mlops_assets.runtime import settings
from mlops_assets.runtime.tracking_server import LEAN_SERVER_ENVIRONMENT
from mlops_assets_tests.stack import local_stack

CONFIGURATIONS: dict[str, Mapping[str, str]] = {
    "make_run": LEAN_SERVER_ENVIRONMENT,
    "job_runner_on": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"},
}


def totals(processes: list[Process]) -> dict[str, float]:
    """The stack's summed resident and proportional set sizes, and its process count."""
    return {
        "rss_mb": round(sum(p.rss_mb for p in processes), 1),
        "pss_mb": round(sum(p.pss_mb for p in processes), 1),
        "processes": len(processes),
    }


def idle(home: Path, settle: float) -> tuple[dict[str, float], list[Process]]:
    """The idle stack's totals (median of three samples) and its processes at the last."""
    time.sleep(settle)
    samples, processes = [], []
    for _ in range(3):
        processes = stack_processes(home)
        samples.append(totals(processes))
        time.sleep(1)
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}, processes


def peak_during_backfill(url: str, home: Path, timeout: float) -> dict[str, float]:
    """Backfill everything and return the peak totals, sampled every second meanwhile."""
    peak = {"rss_mb": 0.0, "pss_mb": 0.0, "processes": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for key, value in totals(stack_processes(home)).items():
                peak[key] = max(peak[key], value)
            done.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        assets, months = every_asset_and_month(url)
        wait_for_backfill(url, launch_backfill(url, assets, months), timeout)
    finally:
        done.set()
        sampler.join()
    return peak


def run(repeats: int, settle: float, backfill: str | None, timeout: float) -> dict[str, Any]:
    """Measure and return the figures."""
    source = settings.landing_dir()
    if layout.is_empty(source):
        layout.seed_landing_zone(source)
    figures: dict[str, Any] = {"repeats": repeats, "settle_s": settle}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGURATIONS}
    processes: dict[str, list[Process]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        landing = landing_through(source, backfill, Path(scratch) / "landing")
        for repeat in range(repeats):
            for name, env in CONFIGURATIONS.items():
                root = Path(scratch) / f"{name}-{repeat}"
                with local_stack(root, landing, env) as stack:
                    sample, processes[name] = idle(stack.dagster_home, settle)
                    samples[name].append(sample)
                    if backfill and name == "make_run" and repeat == 0:
                        figures["backfill"] = {
                            "months_through": backfill,
                            **peak_during_backfill(stack.dagster_url, stack.dagster_home, timeout),
                        }
    for name, runs in samples.items():
        figures[name] = {key: statistics.median(run[key] for run in runs) for key in runs[0]} | {
            "samples": runs,
            "processes_at_last": [vars(p) for p in processes[name]],
        }
    figures["rss_ratio"] = round(
        figures["make_run"]["rss_mb"] / figures["job_runner_on"]["rss_mb"], 3
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--backfill", default=None, help="backfill through this month (YYYY-MM)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()
    print(json.dumps(run(args.repeats, args.settle, args.backfill, args.timeout), indent=2))
