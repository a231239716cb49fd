"""The @champion, read in one place: which version it is, whether it may be used, its audit.

MLflow holds the alias and the audit trail of its moves (:mod:`mlops_assets.tracking.registry`);
Dagster holds what ``registered_model`` last recorded, as its data version
``champion-<version>``. A champion is *usable* by what scores downstream when the two agree
and its audit shows it passed the gate (or came back by a recorded rollback). Every asset,
op, check and command that needs the champion imports it from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.defs.shared.keys import DATA_VERSION_TAG, REGISTERED_MODEL
from mlops_assets.defs.shared.lineage import data_version, latest_materialization
from mlops_assets.tracking.records import CHAMPION

if TYPE_CHECKING:
    from mlops_assets.resources import MlflowTracking
    from mlops_assets.tracking.registry import ChampionAudit


def champion_data_version(version: str | None) -> str:
    """The data version of ``registered_model`` while ``version`` is @champion."""
    return f"champion-{version or 'none'}"


def recorded_champion(instance: dg.DagsterInstance) -> str | None:
    """The data version ``registered_model`` records now: ``champion-<version>`` (or None)."""
    return data_version(latest_materialization(instance, REGISTERED_MODEL))


def has_recorded_champion(instance: dg.DagsterInstance) -> bool:
    """Whether ``registered_model`` has recorded a version as @champion (the gate has passed)."""
    return recorded_champion(instance) not in (None, champion_data_version(None))


def current_champion(mlflow_tracking: MlflowTracking) -> str | None:
    """The version that carries @champion in the registry now, usable or not (None: none)."""
    from mlops_assets.tracking.registry import current_version

    return current_version(mlflow_tracking.client(), mlflow_tracking.model_name, CHAMPION)


def champion_audit(mlflow_tracking: MlflowTracking) -> ChampionAudit:
    """How @champion got where it is: its version, the gate it passed, the move that made it."""
    from mlops_assets.tracking.registry import audit_champion

    return audit_champion(mlflow_tracking.client(), mlflow_tracking.model_name, CHAMPION)


def usable_champion(
    instance: dg.DagsterInstance, mlflow_tracking: MlflowTracking
) -> tuple[str | None, str]:
    """@champion if what scores downstream may use it, else None; and why, in words.

    Usable: it passed the gate, got there by a recorded move, and ``registered_model``
    records it (so what is scored with it goes stale when it changes).
    """
    audit = champion_audit(mlflow_tracking)
    if not audit.usable or audit.version is None:
        return None, audit.describe()
    recorded = recorded_champion(instance)
    if recorded != champion_data_version(audit.version):
        return None, (
            f"@champion is version {audit.version} but registered_model records {recorded}: "
            "materialize registered_model again"
        )
    return audit.version, audit.describe()


def champion_materialization(
    instance: dg.DagsterInstance,
    champion: str,
    description: str,
    metadata: dict[str, dg.MetadataValue],
) -> dg.AssetMaterialization:
    """A materialization of ``registered_model`` whose data version is the new champion's.

    It keeps the provenance (code version, input data versions) of the latest
    materialization, so ``registered_model`` itself is not shown stale, while what scored
    with the previous champion (the predictions) is.
    """
    latest = latest_materialization(instance, REGISTERED_MODEL)
    tags = latest.asset_materialization.tags if latest and latest.asset_materialization else {}
    provenance = {
        key: value
        for key, value in (tags or {}).items()
        if key.startswith(("dagster/code_version", "dagster/input_"))
    }
    return dg.AssetMaterialization(
        asset_key=REGISTERED_MODEL,
        description=description,
        metadata=metadata,
        tags={
            **provenance,
            DATA_VERSION_TAG: champion_data_version(champion),
            "dagster/data_version_is_user_provided": "true",
        },
    )
