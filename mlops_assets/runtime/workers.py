"""Start the Celery workers that run the production profile's steps (dagster-celery).

Each worker is ``dagster-celery worker start`` with the executor's own settings
(:func:`mlops_assets.runtime.profiles.celery_config`), written once as the YAML it reads, so the
workers and the runs that feed them cannot disagree on the broker or on late
acknowledgement. A worker needs what a run needs: ``DAGSTER_HOME`` (the production instance),
``MLOPS_DATA_DIR``, ``MLFLOW_TRACKING_URI`` and the broker's variables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mlops_assets.runtime.profiles import celery_config

APP = "dagster_celery.app"


def write_worker_config(home: Path) -> Path:
    """Write ``<home>/celery_workers.yaml``, the executor config the workers start from."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "celery_workers.yaml"
    path.write_text(
        "# Written by `mlops-assets workers` from mlops_assets/runtime/profiles.py; do not edit.\n"
        + yaml.safe_dump({"execution": {"config": celery_config()}}, sort_keys=True),
        encoding="utf-8",
    )
    return path


def worker_command(config: Path, name: str, concurrency: int = 1) -> list[str]:
    """The command of one worker named ``name`` running ``concurrency`` steps at a time."""
    return [
        str(Path(sys.executable).parent / "dagster-celery"),
        "worker",
        "start",
        "--app",
        APP,
        "--config-yaml",
        str(config),
        "--name",
        name,
        "--loglevel",
        "INFO",
        "--",
        f"--concurrency={concurrency}",
    ]


def worker_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this interpreter's scripts first on ``PATH``.

    ``dagster-celery worker start`` runs the ``celery`` command by name.
    """
    scripts = str(Path(sys.executable).parent)
    return {**env, "PATH": os.pathsep.join([scripts, env.get("PATH", "")])}


def run_workers(home: Path, count: int, concurrency: int = 1, prefix: str = "mlops") -> int:
    """Start ``count`` workers named ``<prefix>-<n>@<host>`` and wait.

    SIGINT or SIGTERM stops all of them (each finishes the step in hand). A worker that
    exits on its own (a broker it cannot reach, a name already taken) stops the others too:
    a pool that silently shrank would only show as runs that wait.

    Returns:
        0 once every worker stopped after a signal, else the first failed worker's status.
    """
    config = write_worker_config(home)
    host = os.uname().nodename
    workers = [
        subprocess.Popen(
            worker_command(config, f"{prefix}-{n}", concurrency),
            env=worker_environment(dict(os.environ)),
            start_new_session=True,
        )
        for n in range(1, count + 1)
    ]
    print(
        f"{count} Celery worker(s) {prefix}-1..{prefix}-{count}@{host}, {concurrency} step(s) each",
        flush=True,
    )
    stopping = False

    def stop_all() -> None:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)  # warm shutdown: the step in hand ends

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        stop_all()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    unasked: subprocess.Popen[bytes] | None = None  # the first worker that ended on its own
    while any(worker.poll() is None for worker in workers):
        if not stopping and unasked is None:
            unasked = next((w for w in workers if w.poll() is not None), None)
            if unasked is not None:
                stop_all()
        time.sleep(0.5)
    if not stopping and unasked is None:  # every worker ended on its own between two looks
        unasked = workers[0]
    if unasked is None:
        return 0
    print(
        f"a worker exited with status {unasked.returncode} on its own: every worker of this "
        "command is stopped",
        flush=True,
    )
    return unasked.returncode or 1  # a pool that stops unasked has failed, whatever the status
