"""Months per run: what the year's month and scoring runs cost for several batch sizes.

Runs what ``mlops-assets materialize`` runs for the months (``rebuild.ingest``: the months'
raw data, planes and features, cut into batches of ``MLOPS_MONTHS_PER_RUN``) and for the predictions
(``rebuild.score``), for each batch size in its own new process (as the command does), on
one Dagster home and MLflow store prepared by a warm-up rebuild (which makes a champion to
score with). The sizes alternate within each round; the baseline is one month per run (the
run shape before the batches), measured in the same session. Reports, per size, the medians
of the month runs' and the scoring runs' wall time, their ratio to the baseline's, the
number of runs and the peak resident memory of the largest process (this one or a worker).
Usage: python -m benchmarks.bench_batches [--sizes 12,6,4,1] [--repeats 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import scratch_project
from mlops_assets.landing import layout
from mlops_assets.runtime import settings

ROOT = Path(__file__).resolve().parent.parent


def one(size: int, workers: int) -> dict[str, Any]:
    """In this process: ingest and score every landed month in batches of ``size``."""
    import dagster as dg

    from mlops_assets.cli import rebuild
    from mlops_assets.definitions import defs
    from mlops_assets.defs.shared.partitions import MONTHS_PER_RUN

    if size != MONTHS_PER_RUN:
        raise RuntimeError(f"{settings.MONTHS_PER_RUN_ENV} gives {MONTHS_PER_RUN}, not {size}")

    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        months = rebuild.ingest(defs, instance, settings.landing_dir(), workers)
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        scoring = rebuild.score(defs, instance, workers)
        score_s = time.perf_counter() - started
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "month_runs": len(months) - 1,
        "scoring_runs": len(scoring),
        "ingest_s": ingest_s,
        "score_s": score_s,
        "peak_rss_mb": peak_kb / 1024,
    }


def _child(size: int, workers: int, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_batches", "--one", str(size)]
    command += ["--workers", str(workers)]
    env = {**env, settings.MONTHS_PER_RUN_ENV: str(size)}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"batch size {size} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(sizes: list[int], repeats: int, workers: int) -> dict[str, Any]:
    """Measure and return the figures."""
    from mlops_assets_tests.contract import FAST_RUN_CONFIG

    source = settings.landing_dir()
    if layout.is_empty(source):
        layout.seed_landing_zone(source)
    samples: dict[int, list[dict[str, Any]]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory() as scratch:
        _, env = scratch_project(Path(scratch), source)
        warm_up = [sys.executable, "-m", "benchmarks.bench_batches", "--prepare"]
        warm_up += ["--config", json.dumps(FAST_RUN_CONFIG)]
        subprocess.run(warm_up, env=env, cwd=ROOT, capture_output=True, check=True)
        for _ in range(repeats):
            for size in sizes:
                samples[size].append(_child(size, workers, env))
    baseline = 1 if 1 in samples else max(samples)
    base = {
        key: statistics.median(s[key] for s in samples[baseline]) for key in ("ingest_s", "score_s")
    }
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "repeats": repeats,
        "workers": workers,
        "baseline_months_per_run": baseline,
        "sizes": {},
    }
    for size, runs in samples.items():
        ingest = statistics.median(s["ingest_s"] for s in runs)
        score = statistics.median(s["score_s"] for s in runs)
        figures["sizes"][str(size)] = {
            "month_runs": runs[0]["month_runs"],
            "scoring_runs": runs[0]["scoring_runs"],
            "ingest_s": round(ingest, 2),
            "score_s": round(score, 2),
            "ingest_ratio": round(ingest / base["ingest_s"], 3),
            "score_ratio": round(score / base["score_s"], 3),
            "peak_rss_mb": round(max(s["peak_rss_mb"] for s in runs)),
            "ingest_runs_s": [round(s["ingest_s"], 2) for s in runs],
            "score_runs_s": [round(s["score_s"], 2) for s in runs],
        }
    return figures


def _prepare(config: dict[str, Any]) -> None:
    import dagster as dg

    from mlops_assets.cli import rebuild
    from mlops_assets.definitions import defs

    with dg.DagsterInstance.get() as instance:
        rebuild.rebuild(defs, instance, settings.landing_dir(), config)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12,6,4,1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 4))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", default="{}", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.prepare:
        _prepare(json.loads(arguments.config))
    elif arguments.one:
        print(json.dumps(one(arguments.one, arguments.workers)))
    else:
        sizes = [int(size) for size in arguments.sizes.split(",")]
        print(json.dumps(run(sizes, arguments.repeats, arguments.workers), indent=2))
