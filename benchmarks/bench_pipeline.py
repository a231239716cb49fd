"""Full materialization (cold process, CLI) against the plain script, in the same run.

Each repetition starts new processes: ``mlops-assets materialize`` (the months in batches,
the model, the scoring in batches: the runs of a backfill of everything) with the project's
executor and instance settings (deploy/local/dagster.yaml), on a persistent Dagster home and
MLflow store made by one warm-up run (as on any day after the first); then
``benchmarks/plain_pipeline.py``. Prints JSON with the medians, the ratio of the medians, the
median of the paired ratios and the held-out metrics; the plain script's drift time, with
the ratio to the plain script without it (as it was before it measured drift); and the
year's scoring: the command's ``scoring_job`` runs (start to end; they run one after the
other) against the plain script's scoring and drift of every month.
Usage: python benchmarks/bench_pipeline.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from mlops_assets.landing import layout
from mlops_assets.runtime import settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run a command in the project folder; its wall time and output (fails loudly)."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def local_environment(data: Path, home: Path) -> dict[str, str]:
    """This environment pointed at a scratch data folder, Dagster home and MLflow store."""
    env = {
        **os.environ,
        "MLOPS_DATA_DIR": str(data),
        "DAGSTER_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
    }
    env.pop("PYTHONPATH", None)
    return env


def scratch_project(scratch: Path, source: Path) -> tuple[Path, dict[str, str]]:
    """A new project under ``scratch``: the landing zone ``source`` linked in, a Dagster home
    with the project's local instance settings (deploy/local/dagster.yaml); its data folder
    and the environment pointed at both."""
    data, home = scratch / "data", scratch / "dagster_home"
    data.mkdir()
    home.mkdir()
    (data / "landing").symlink_to(source)
    shutil.copy(ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    return data, local_environment(data, home)


def scoring_seconds(home: Path, since: float) -> float:
    """Seconds the ``scoring_job`` runs created after ``since`` took, each from its start to
    its end (``mlops-assets materialize`` runs them one after the other)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records(
            dg.RunsFilter(job_name="scoring_job", created_after=datetime.fromtimestamp(since, UTC))
        )
    if not records or any(r.start_time is None or r.end_time is None for r in records):
        raise RuntimeError(f"no finished scoring_job run since {since} in {home}")
    return sum(float(r.end_time or 0) - float(r.start_time or 0) for r in records)


def run(repeats: int) -> dict[str, Any]:
    """Measure and return the figures."""
    source = settings.landing_dir()
    if layout.is_empty(source):
        layout.seed_landing_zone(source)
    with tempfile.TemporaryDirectory() as scratch:
        _, env = scratch_project(Path(scratch), source)
        dagster = [str(BIN / "mlops-assets"), "materialize"]
        plain = [str(BIN / "python"), "benchmarks/plain_pipeline.py", str(source), scratch + "/p"]
        first_run, _ = timed(dagster, env)  # creates the Dagster and MLflow stores
        pipeline_times, plain_times, drift_times = [], [], []
        scoring_times, plain_scoring_times = [], []
        plain_metrics: dict[str, float] = {}
        for _ in range(repeats):
            started = time.time()
            pipeline_times.append(timed(dagster, env)[0])
            scoring_times.append(scoring_seconds(Path(env["DAGSTER_HOME"]), started))
            elapsed, out = timed(plain, env)
            plain_times.append(elapsed)
            plain_metrics = json.loads(out.strip().splitlines()[-1])
            drift_times.append(plain_metrics["drift_s"])
            plain_scoring_times.append(plain_metrics["scoring_s"] + plain_metrics["drift_s"])
    pipeline, baseline = statistics.median(pipeline_times), statistics.median(plain_times)
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "repeats": repeats,
        "first_run_s": round(first_run, 2),
        "pipeline_s": round(pipeline, 2),
        "plain_s": round(baseline, 2),
        "ratio": round(pipeline / baseline, 3),
        "paired_ratio_median": round(
            statistics.median(p / b for p, b in zip(pipeline_times, plain_times, strict=True)), 3
        ),
        "pipeline_runs_s": [round(t, 2) for t in pipeline_times],
        "plain_runs_s": [round(t, 2) for t in plain_times],
        "plain_drift_s": round(statistics.median(drift_times), 2),
        "scoring_runs_s": round(statistics.median(scoring_times), 2),
        "plain_scoring_and_drift_s": round(statistics.median(plain_scoring_times), 2),
        "scoring_ratio": round(
            statistics.median(scoring_times) / statistics.median(plain_scoring_times), 3
        ),
        "ratio_to_plain_without_drift": round(
            pipeline
            / statistics.median(p - d for p, d in zip(plain_times, drift_times, strict=True)),
            3,
        ),
        "holdout_roc_auc": round(plain_metrics["roc_auc"], 4),
        "holdout_pr_auc": round(plain_metrics["pr_auc"], 4),
        "holdout_log_loss": round(plain_metrics["log_loss"], 4),
        "holdout_brier": round(plain_metrics["brier_score"], 4),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    print(json.dumps(run(parser.parse_args().repeats), indent=2))
