"""The rollback job: move @champion back to the previous champion or a named version."""

import dagster as dg
from pydantic import Field

from mlops_assets.defs.lineage import DATA_VERSION_TAG, latest_materialization
from mlops_assets.defs.policies import MLFLOW_RETRY
from mlops_assets.defs.registry import champion_data_version
from mlops_assets.records import CHAMPION
from mlops_assets.resources import MlflowTracking, Notifier

REGISTERED_MODEL = dg.AssetKey("registered_model")


class RollbackConfig(dg.Config):
    """What to roll back to, and why (both recorded in the audit trail)."""

    reason: str = Field(
        min_length=3, description="Why @champion is rolled back; recorded with the move."
    )
    target_version: str | None = Field(
        default=None,
        description="Version to make @champion; empty means the champion before the current one.",
    )


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


@dg.op(retry_policy=MLFLOW_RETRY, tags={"kind": "mlflow"})
def roll_back_champion(
    context: dg.OpExecutionContext,
    config: RollbackConfig,
    mlflow_tracking: MlflowTracking,
    notifier: Notifier,
) -> None:
    """Move @champion to the target version and record who, when and why."""
    from mlflow.exceptions import MlflowException

    from mlops_assets.model_registry import (
        RegistryError,
        alias_history,
        move_alias,
        rollback_target,
    )

    client, name = mlflow_tracking.client(), mlflow_tracking.model_name
    current = mlflow_tracking.alias_version(CHAMPION)
    try:
        target = rollback_target(
            alias_history(client, name, CHAMPION) if current else [],
            current,
            config.target_version,
        )
    except RegistryError as error:
        raise dg.Failure(description=f"rollback refused: {error}", allow_retries=False) from error
    try:
        client.get_model_version(name, target)
    except MlflowException as error:
        raise dg.Failure(
            description=f"rollback refused: {name} has no version {target!r} ({error.message})",
            allow_retries=False,
        ) from error
    move = move_alias(
        client,
        name,
        CHAMPION,
        target,
        dagster_run_id=context.run_id,
        reason=f"rollback: {config.reason}",
    )
    client.set_model_version_tag(name, str(current), "rolled_back_by_run", context.run_id)
    notifier.send(
        title=f"{name}: @champion rolled back from version {current} to {target}",
        text=f"Reason: {config.reason}",
        link=mlflow_tracking.model_version_url(target),
        log=context.log,
    )
    context.log_event(
        champion_materialization(
            context.instance,
            champion=target,
            description=f"@champion rolled back from {current} to {target}: {config.reason}",
            metadata={
                "version": dg.MetadataValue.text(target),
                "aliases": dg.MetadataValue.text("@champion"),
                "previous_champion": dg.MetadataValue.text(str(current)),
                "reason": dg.MetadataValue.text(config.reason),
                "rolled_back_at": dg.MetadataValue.text(move.at),
                "model_version": dg.MetadataValue.url(mlflow_tracking.model_version_url(target)),
            },
        )
    )


@dg.job(
    description="Move @champion back to the previous champion (or config.target_version), "
    "recording why in the registry's audit trail."
)
def rollback_job() -> None:
    """Roll back the champion."""
    roll_back_champion()
