"""What differs between the environments in code: the executor.

``definitions.py`` asks :func:`executor_for` for the environment that
:func:`mlops_assets.runtime.settings.environment` reads. The resources are the same in every
environment: where they point (``MLFLOW_TRACKING_URI``, ``MLOPS_DATA_DIR``, the broker named
here) is read when a run starts.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlops_assets.runtime.settings import Environment

CELERY_BROKER_ENV = "MLOPS_CELERY_BROKER"
"""Broker URL of the Celery workers, e.g. ``redis://127.0.0.1:6379/0`` or
``amqp://guest:guest@127.0.0.1:5672//``."""

CELERY_BACKEND_ENV = "MLOPS_CELERY_BACKEND"
"""Result backend of the Celery workers, e.g. ``redis://127.0.0.1:6379/1``."""

CELERY_SETTINGS: dict[str, Any] = {
    # A step's task is acknowledged when it ends, not when a worker takes it: the broker
    # gives the task of a worker that died to another worker.
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    # One step per worker process at a time: a long training never holds a second task back.
    "worker_prefetch_multiplier": 1,
}
"""Celery settings shared by the executor (``config_source``) and the workers it feeds."""


def celery_config() -> dict[str, Any]:
    """The Celery executor's configuration, as run config and as the workers' YAML take it."""
    return {
        "broker": {"env": CELERY_BROKER_ENV},
        "backend": {"env": CELERY_BACKEND_ENV},
        "config_source": dict(CELERY_SETTINGS),
    }


def executor_for(environment: Environment) -> dg.ExecutorDefinition:
    """In-process steps locally; each step a Celery task on the workers in production."""
    if environment == "local":
        # A step in a new process re-imports dagster, pandas, mlflow and scikit-learn
        # (~5 s), more than a 2-core machine gains from running steps in parallel.
        return dg.in_process_executor
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_config(), name="celery_workers")
