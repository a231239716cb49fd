"""The registered model: a registry version with @challenger, promoted to @champion by the gate."""

import dagster as dg
from pydantic import Field

from mlops_assets.defs.metadata import OWNERS
from mlops_assets.defs.policies import MLFLOW_RETRY, REFRESH_WHEN_INPUTS_CHANGE
from mlops_assets.records import EvaluationReport, ModelReference, RegisteredModelVersion
from mlops_assets.resources import MlflowTracking

CHAMPION, CHALLENGER = "champion", "challenger"


class RegistryConfig(dg.Config):
    """The quality gate a new version must pass to become the champion."""

    min_roc_auc: float = Field(
        default=0.70,
        ge=0,
        le=1,
        description="Held-out ROC AUC a version needs to become @champion.",
    )


@dg.asset(
    group_name="registry",
    kinds={"mlflow"},
    owners=OWNERS,
    code_version="1",
    retry_policy=MLFLOW_RETRY,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    io_manager_key="record_io_manager",
)
def registered_model(
    context: dg.AssetExecutionContext,
    config: RegistryConfig,
    trained_model: ModelReference,
    model_evaluation: EvaluationReport,
    mlflow_tracking: MlflowTracking,
) -> dg.Output[RegisteredModelVersion]:
    """Registry version of the model: @challenger always, @champion when it passes the gate."""
    import mlflow

    from mlops_assets.ml.promotion import absolute_floor_gate

    name = mlflow_tracking.model_name
    client = mlflow_tracking.client()
    with mlflow_tracking.asset_run(context) as run:
        if model_evaluation.model_uri != trained_model.model_uri:
            raise dg.Failure(
                allow_retries=False,
                description=(
                    f"model_evaluation scored {model_evaluation.model_uri} but trained_model is "
                    f"{trained_model.model_uri}: materialize model_evaluation first."
                ),
            )
        roc_auc = model_evaluation.metrics["roc_auc"]
        decision = absolute_floor_gate(roc_auc, config.min_roc_auc)
        previous = mlflow_tracking.alias_version(CHAMPION)
        registered = mlflow.register_model(
            trained_model.model_uri,
            name,
            tags={
                "holdout_month": str(model_evaluation.holdout_month),
                "holdout_roc_auc": f"{roc_auc:.6f}",
                "training_run_id": trained_model.run_id,
                "evaluation_run_id": model_evaluation.run_id,
                "dagster.run_id": context.run.run_id,
                "gate": "passed" if decision.promote else "failed",
                "gate_reason": decision.reason,
            },
        )
        version = str(registered.version)
        client.update_model_version(
            name,
            version,
            description=(
                f"Trained on months {trained_model.train_months}, held out month "
                f"{model_evaluation.holdout_month}: ROC AUC {roc_auc:.4f}. "
                f"Gate: {decision.reason}. Dagster run "
                f"[{context.run.run_id}]({mlflow_tracking.dagster_run_url(context.run.run_id)})."
            ),
        )
        client.set_registered_model_alias(name, CHALLENGER, version)
        aliases = [CHALLENGER]
        if decision.promote:
            client.set_registered_model_alias(name, CHAMPION, version)
            aliases.append(CHAMPION)
            if previous is not None and previous != version:
                client.set_model_version_tag(name, previous, "retired_by_version", version)
        mlflow.log_params(
            {"registered_model": name, "version": version, "promoted": decision.promote}
        )
        mlflow.set_tag("gate_reason", decision.reason)
    result = RegisteredModelVersion(
        name=name,
        version=version,
        aliases=aliases,
        promoted=decision.promote,
        reason=decision.reason,
        previous_champion=previous,
    )
    return dg.Output(
        result,
        metadata={
            "model_version": dg.MetadataValue.url(mlflow_tracking.model_version_url(version)),
            "version": dg.MetadataValue.text(version),
            "aliases": dg.MetadataValue.text(", ".join(f"@{alias}" for alias in aliases)),
            "promoted": dg.MetadataValue.bool(decision.promote),
            "gate_reason": dg.MetadataValue.text(decision.reason),
            "holdout_roc_auc": dg.MetadataValue.float(roc_auc),
            "previous_champion": dg.MetadataValue.text(previous or "none"),
            **run.metadata(),
        },
    )
