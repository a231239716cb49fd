"""Where the project keeps its files, resolved at run time (never at import time).

Every default the resources fall back to is derived here, from two environment variables:
``MLOPS_DATA_DIR`` (default ``data/`` under the working directory) and
``MLFLOW_TRACKING_URI`` (default an SQLite file inside the data directory).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "MLOPS_DATA_DIR"
DEFAULT_DATA_DIR = "data"


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
