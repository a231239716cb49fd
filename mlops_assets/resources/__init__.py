"""The resources every asset is bound to; resource keys are the same in every environment."""

from __future__ import annotations

from typing import Any

from mlops_assets.resources.io_managers import LakeIOManager, RecordIOManager
from mlops_assets.resources.landing_zone import LandingZone
from mlops_assets.resources.mlflow_tracking import AssetRun, MlflowTracking
from mlops_assets.resources.notifier import Notifier

__all__ = [
    "AssetRun",
    "LakeIOManager",
    "LandingZone",
    "MlflowTracking",
    "Notifier",
    "RecordIOManager",
    "build_resources",
]


def build_resources() -> dict[str, Any]:
    """The resources of every environment: files under the data dir, MLflow at its URI.

    Every location they use is resolved when a run starts, from ``MLOPS_DATA_DIR`` and
    ``MLFLOW_TRACKING_URI`` (an SQLite file locally, the tracking server in production), so
    the same definitions serve tests, users, CI and the production profile.
    """
    return {
        "landing_zone": LandingZone(),
        "mlflow_tracking": MlflowTracking(),
        "io_manager": LakeIOManager(),
        "record_io_manager": RecordIOManager(),
        "notifier": Notifier(),
    }
