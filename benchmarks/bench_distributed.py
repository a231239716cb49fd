"""Full materialization on Celery workers (1 and 2) against the in-process default.

Every configuration runs the same runs, each in its own process as the run launcher starts
them (``dagster job execute``): the runs a backfill of everything makes (the months in
batches of ``MONTHS_PER_RUN``, at once; the model, the default candidate search; the
scoring's batches, at once). The in-process
default keeps Dagster and MLflow on SQLite and runs each run's steps in its own process; the
Celery configurations use the production profile on the machine's services: Dagster on
PostgreSQL, MLflow from ``mlops-assets tracking-server`` on PostgreSQL, RabbitMQ, and N
workers of one step each. Each configuration starts from empty stores and a landed year.
Prints JSON. Usage: python -m benchmarks.bench_distributed [--repeats N]
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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from mlops_assets.defs.shared.partitions import Batch, batch_label, month_ranges
from mlops_assets.landing import layout
from mlops_assets.runtime import local_instance
from mlops_assets_tests.services import scratch_database, scratch_vhost
from mlops_assets_tests.stack import (
    free_port,
    job_command,
    start_celery_worker,
    start_tracking_server,
)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MONTHS = [layout.month_key(2013, month) for month in range(1, 13)]
BATCHES = month_ranges(MONTHS, MONTHS)


def _run(job: str, env: dict[str, str], months: Batch | None = None) -> None:
    command = job_command(job, months=months)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        where = batch_label(*months) if months else ""
        raise RuntimeError(f"{job} {where} failed:\n{done.stdout[-3000:]}")


def materialize_everything(env: dict[str, str]) -> float:
    """Seconds to run the month batches, the model and the scoring batches, as runs."""
    subprocess.run(
        [str(BIN / "mlops-assets"), "register-months"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    start = time.perf_counter()
    with ThreadPoolExecutor(len(BATCHES)) as pool:
        list(pool.map(lambda batch: _run("month_job", env, batch), BATCHES))
    _run("retrain_job", env)
    with ThreadPoolExecutor(len(BATCHES)) as pool:
        list(pool.map(lambda batch: _run("scoring_job", env, batch), BATCHES))
    return time.perf_counter() - start


def _landed(root: Path) -> Path:
    data = root / "data"
    layout.seed_landing_zone(data / "landing")
    return data


@contextmanager
def in_process(root: Path) -> Iterator[dict[str, str]]:
    """The embedded default: SQLite stores, each run's steps in its own process."""
    data, home = _landed(root), root / "home"
    local_instance.prepare_dagster_home(home, ROOT / "deploy" / "local" / "dagster.yaml")
    yield {
        **os.environ,
        "MLOPS_ENV": "local",
        "DAGSTER_HOME": str(home),
        "MLOPS_DATA_DIR": str(data),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
    }


@contextmanager
def on_celery(root: Path, count: int) -> Iterator[dict[str, str]]:
    """The production profile with ``count`` workers, on scratch databases and a vhost."""
    data, home, logs = _landed(root), root / "home", root / "logs"
    logs.mkdir()
    local_instance.prepare_dagster_home(home, ROOT / "deploy" / "production" / "dagster.yaml")
    port = free_port()
    with ExitStack() as stack:
        env = {
            **os.environ,
            "MLOPS_ENV": "production",
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": stack.enter_context(scratch_database("bench_dagster")),
            "MLOPS_DATA_DIR": str(data),
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
            "MLOPS_CELERY_BROKER": stack.enter_context(scratch_vhost("bench")),
            "MLOPS_CELERY_BACKEND": "rpc://",
        }
        tracking = start_tracking_server(
            port, stack.enter_context(scratch_database("bench_mlflow")), root, env
        )
        stack.callback(tracking.stop)
        for n in range(1, count + 1):
            stack.callback(start_celery_worker(f"mlops-{n}", env, logs).stop)
        yield env


def run(repeats: int = 1) -> dict[str, Any]:
    """Median seconds of each configuration over ``repeats``, and the 2-over-1 speed-up."""
    configurations = {
        "in_process_s": in_process,
        "celery_1_worker_s": lambda root: on_celery(root, 1),
        "celery_2_workers_s": lambda root: on_celery(root, 2),
    }
    figures: dict[str, Any] = {}
    for name, configuration in configurations.items():
        times = []
        for _ in range(repeats):
            root = Path(tempfile.mkdtemp(prefix="bench_distributed_"))
            try:
                with configuration(root) as env:
                    times.append(materialize_everything(env))
            finally:
                shutil.rmtree(root, ignore_errors=True)
        figures[name] = round(statistics.median(times), 1)
    figures["speed_up_2_over_1"] = round(
        figures["celery_1_worker_s"] / figures["celery_2_workers_s"], 2
    )
    figures["repeats"] = repeats
    figures["batches"] = [batch_label(*batch) for batch in BATCHES]
    figures["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=1)
    print(json.dumps(run(parser.parse_args().repeats)))


if __name__ == "__main__":
    main()
