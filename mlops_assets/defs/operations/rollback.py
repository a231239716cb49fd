"""The rollback job: move @champion back to the previous champion or a named version."""

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from mlops_assets.defs.model.champion import champion_materialization, current_champion
from mlops_assets.defs.shared.policies import MLFLOW_RETRY, REGISTRY_POOL
from mlops_assets.resources import MlflowTracking, Notifier
from mlops_assets.tracking.records import CHAMPION

if TYPE_CHECKING:
    from mlops_assets.tracking.registry import AliasMove


class RollbackConfig(dg.Config):
    """What to roll back to, and why (both recorded in the audit trail)."""

    reason: str = Field(
        min_length=3, description="Why @champion is rolled back; recorded with the move."
    )
    target_version: str | None = Field(
        default=None,
        description="Version to make @champion; empty means the champion before the current one.",
    )


def _roll_back(
    context: dg.OpExecutionContext, config: RollbackConfig, mlflow_tracking: MlflowTracking
) -> "AliasMove":
    """Move @champion as configured, or complete the move this run recorded before an outage.

    A rollback is recorded, then made (``model_registry.move_alias``). A retry, or a
    re-execution of the run, finds the record its run group wrote and completes that move,
    rather than computing a new target from the history its own record changed.
    """
    from mlops_assets.tracking.registry import (
        RegistryError,
        alias_history,
        move_alias,
        registered_version,
        rollback_target,
    )

    client, name = mlflow_tracking.client(), mlflow_tracking.model_name
    current = current_champion(mlflow_tracking)
    history = alias_history(client, name, CHAMPION) if current else []
    group = context.instance.get_run_group(context.run_id)
    runs = {run.run_id for run in group[1]} if group else {context.run_id}
    recorded = [move for move in history if move.dagster_run_id in runs]
    if recorded and recorded[-1] != history[-1]:
        raise dg.Failure(
            allow_retries=False,
            description=f"this run recorded the rollback of @champion from "
            f"{recorded[-1].from_version} to {recorded[-1].to_version}, but run "
            f"{history[-1].dagster_run_id} has moved @champion since (to "
            f"{history[-1].to_version}): nothing more is moved; launch a new rollback if it "
            "is still wanted.",
        )
    if recorded:
        target = recorded[-1].to_version
        context.log.info(f"completing the rollback to version {target} this run recorded")
    else:
        try:
            target = rollback_target(history, current, config.target_version)
        except RegistryError as error:
            raise dg.Failure(
                description=f"rollback refused: {error}", allow_retries=False
            ) from error
        try:
            gate = registered_version(client, name, target).tags.get("gate", "missing")
        except RegistryError as error:
            raise dg.Failure(
                description=f"rollback refused: {error}", allow_retries=False
            ) from error
        if gate != "passed":
            # Nothing downstream may use an ungated champion (champion_passed_the_gate):
            # moving it there would stop the scoring instead of restoring it.
            raise dg.Failure(
                description=f"rollback refused: version {target} did not pass the gate "
                f"(gate: {gate}); roll back to a version whose gate passed",
                allow_retries=False,
            )
    move = move_alias(
        client,
        name,
        CHAMPION,
        target,
        dagster_run_id=context.run_id,
        reason=f"rollback: {config.reason}",
    )
    client.set_model_version_tag(name, str(move.from_version), "rolled_back_by_run", context.run_id)
    return move


@dg.op(retry_policy=MLFLOW_RETRY, pool=REGISTRY_POOL, tags={"kind": "mlflow"})
def roll_back_champion(
    context: dg.OpExecutionContext,
    config: RollbackConfig,
    mlflow_tracking: MlflowTracking,
    notifier: Notifier,
) -> None:
    """Move @champion to the target version and record who, when and why."""
    with mlflow_tracking.classify_faults(context), mlflow_tracking.registry_lock(context):
        move = _roll_back(context, config, mlflow_tracking)
    name, current, target = mlflow_tracking.model_name, str(move.from_version), move.to_version
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
