"""Which environment this is, and where the project keeps its files (never at import time).

``MLOPS_ENV`` picks the profile, ``local`` (the default: embedded SQLite, one process) or
``production`` (PostgreSQL-backed Dagster, an MLflow tracking server, Celery workers); it
is read by :func:`environment` only, when the code location is built.

Every default the resources fall back to is derived here, from environment variables:
``MLOPS_DATA_DIR`` (default ``data/`` under the working directory),
``MLFLOW_TRACKING_URI`` (default an SQLite file inside the data directory), the UI
addresses used in links, ``MLOPS_MLFLOW_UI_URL`` and ``MLOPS_DAGSTER_UI_URL``, and the
months one run works on, ``MLOPS_MONTHS_PER_RUN`` (read by :func:`months_per_run` when the
code location is built), and the first wait of a step retrying through an MLflow outage,
``MLOPS_MLFLOW_RETRY_DELAY_S`` (read by :func:`mlflow_retry_delay`, likewise).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal, get_args

Environment = Literal["local", "production"]
ENVIRONMENT_ENV = "MLOPS_ENV"

DATA_DIR_ENV = "MLOPS_DATA_DIR"
DEFAULT_DATA_DIR = "data"
LOCAL_MLFLOW_UI = "http://127.0.0.1:5000"
LOCAL_DAGSTER_UI = "http://127.0.0.1:3000"


MONTHS_PER_RUN_ENV = "MLOPS_MONTHS_PER_RUN"
DEFAULT_MONTHS_PER_RUN = 6

MLFLOW_RETRY_DELAY_ENV = "MLOPS_MLFLOW_RETRY_DELAY_S"
DEFAULT_MLFLOW_RETRY_DELAY_S = 2.0


class UnknownEnvironmentError(ValueError):
    """``MLOPS_ENV`` names no known environment."""


def environment() -> Environment:
    """``$MLOPS_ENV``: ``local`` when unset or empty, else ``local`` or ``production``.

    Raises:
        UnknownEnvironmentError: On any other value, naming the variable, the value and the choices.
    """
    value = (os.environ.get(ENVIRONMENT_ENV) or "local").strip()
    for known in get_args(Environment):
        if value == known:
            return known
    raise UnknownEnvironmentError(
        f"{ENVIRONMENT_ENV}={value!r}: unknown environment; use one of "
        f"{', '.join(get_args(Environment))}"
    )


def data_dir() -> Path:
    """The project's data directory: ``$MLOPS_DATA_DIR`` or ``./data``, made absolute."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser().resolve()


def landing_dir() -> Path:
    """Where raw monthly files land, as a feed would deliver them."""
    return data_dir() / "landing"


def lake_dir() -> Path:
    """Where the IO manager stores asset values (Parquet and JSON)."""
    return data_dir() / "lake"


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` or the embedded SQLite store inside the data directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir() / 'mlflow.db'}"


def default_artifact_location() -> str:
    """Local artifact root used when the tracking store is a local database."""
    return (data_dir() / "mlartifacts").as_uri()


def dagster_home() -> Path:
    """``$DAGSTER_HOME``, else ``<data dir>/dagster_home`` (the Makefile's default)."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).expanduser().resolve() if home else data_dir() / "dagster_home"


def mlflow_ui_url(tracking_uri: str) -> str:
    """``$MLOPS_MLFLOW_UI_URL``, else an http(s) tracking URI, else http://127.0.0.1:5000."""
    if url := os.environ.get("MLOPS_MLFLOW_UI_URL"):
        return url
    return tracking_uri if tracking_uri.startswith(("http://", "https://")) else LOCAL_MLFLOW_UI


def dagster_ui_url() -> str:
    """``$MLOPS_DAGSTER_UI_URL``, else the local ``dagster dev`` address."""
    return os.environ.get("MLOPS_DAGSTER_UI_URL") or LOCAL_DAGSTER_UI


def months_per_run() -> int:
    """Months one run of a month-partitioned asset works on at most (default 6).

    The batch size of the assets' backfill policy, of the landing sensor's catch-up and of
    ``mlops-assets materialize``. A run holds its batch's frames in memory: a deployment whose
    months are many times 2013's sets ``MLOPS_MONTHS_PER_RUN`` lower (1 at 10x the flights).

    Raises:
        ValueError: When ``MLOPS_MONTHS_PER_RUN`` is not a whole number of months from 1.
    """
    value = (os.environ.get(MONTHS_PER_RUN_ENV) or str(DEFAULT_MONTHS_PER_RUN)).strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{MONTHS_PER_RUN_ENV}={value!r}: a whole number of months, 1 or more")
    return int(value)


def mlflow_retry_delay() -> float:
    """Seconds a step that met an MLflow outage waits before its first retry (default 2).

    The waits before the later retries grow exponentially from it (about 1, 3, 7 and 15
    times it, each give or take it). A deployment whose tracking server takes longer to come
    back sets ``MLOPS_MLFLOW_RETRY_DELAY_S`` higher; docs/operations.md lists the waits.

    Raises:
        ValueError: When ``MLOPS_MLFLOW_RETRY_DELAY_S`` is not a number of seconds above 0.
    """
    value = (os.environ.get(MLFLOW_RETRY_DELAY_ENV) or str(DEFAULT_MLFLOW_RETRY_DELAY_S)).strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{MLFLOW_RETRY_DELAY_ENV}={value!r}: a number of seconds above 0")
    return seconds
