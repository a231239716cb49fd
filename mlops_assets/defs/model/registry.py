"""The registered model: a registry version with @challenger, promoted to @champion by the gate."""

import json
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from mlops_assets.defs.model.champion import champion_audit, champion_data_version, current_champion
from mlops_assets.defs.monitoring.freshness import CHAMPION_FRESHNESS
from mlops_assets.defs.shared.keys import CODE_VERSIONS, REGISTERED_MODEL
from mlops_assets.defs.shared.metadata import OWNERS
from mlops_assets.defs.shared.policies import (
    MLFLOW_RETRY,
    REFRESH_WHEN_INPUTS_CHANGE,
    REGISTRY_POOL,
)
from mlops_assets.resources import MlflowTracking, Notifier
from mlops_assets.tracking.records import (
    ChampionComparison,
    EvaluationReport,
    ModelReference,
    RegisteredModelVersion,
)

if TYPE_CHECKING:
    from mlops_assets.ml.promotion import GateDecision


class RegistryConfig(dg.Config):
    """The quality gate a new version must pass to become the champion."""

    min_roc_auc: float = Field(
        default=0.70,
        ge=0,
        le=1,
        description="Held-out ROC AUC a version needs to become @champion (always applies).",
    )
    min_lower_bound: float = Field(
        default=0.001,
        ge=-1,
        le=1,
        description="Against a champion: the lower bound of the interval of AUC(challenger) - "
        "AUC(champion) (model_evaluation's day-block bootstrap) must be above this. +0.001: "
        "measurably better by a minimum effect (same-model refits under another seed promoted "
        "in at most 4.3% of trials on 2013; 9.4% with 0); negative: not worse by more than that.",
    )
    log_loss_tolerance: float = Field(
        default=0.01, ge=0, description="Log loss may grow by at most this against the champion."
    )
    brier_tolerance: float = Field(
        default=0.005, ge=0, description="Brier score may grow by at most this."
    )


def comparison_tags(compared: ChampionComparison | None) -> dict[str, str]:
    """The comparison with the champion, as version tags (none without a champion)."""
    if compared is None:
        return {}
    return {
        "champion_version": compared.version,
        "champion_roc_auc": f"{compared.auc.champion_auc:.6f}",
        "auc_delta": f"{compared.auc.delta:+.6f}",
        "auc_delta_interval": f"[{compared.auc.low:+.6f}, {compared.auc.high:+.6f}]",
        "auc_delta_days": str(compared.auc.blocks),
    }


def version_tags(
    run: dg.DagsterRun,
    trained_model: ModelReference,
    model_evaluation: EvaluationReport,
    decision: "GateDecision",
) -> dict[str, str]:
    """A new version's tags: its scores, the gate's decision, where it came from.

    They identify the registration (so a retry finds it) and hold what ``reproduce_job``
    needs to rebuild it.
    """
    from mlops_assets.tracking.provenance import EVALUATION_CONFIG_TAG

    return {
        "holdout_month": str(model_evaluation.holdout_month),
        "holdout_roc_auc": f"{model_evaluation.metrics['roc_auc']:.6f}",
        "training_run_id": trained_model.run_id,
        "evaluation_run_id": model_evaluation.run_id,
        "dagster.run_id": run.run_id,
        "dagster.root_run_id": run.root_run_id or run.run_id,
        "gate": "passed" if decision.promote else "failed",
        "gate_reason": decision.reason,
        "candidate": trained_model.candidate,
        "search": trained_model.search or "full",
        "train_months": ",".join(trained_model.train_months),
        **comparison_tags(model_evaluation.champion),
        **trained_model.provenance,
        EVALUATION_CONFIG_TAG: json.dumps(model_evaluation.config, sort_keys=True),
    }


@dg.asset(
    group_name="registry",
    kinds={"mlflow"},
    owners=OWNERS,
    code_version=CODE_VERSIONS[REGISTERED_MODEL],
    retry_policy=MLFLOW_RETRY,
    pool=REGISTRY_POOL,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    io_manager_key="record_io_manager",
    freshness_policy=CHAMPION_FRESHNESS,
)
def registered_model(
    context: dg.AssetExecutionContext,
    config: RegistryConfig,
    trained_model: ModelReference,
    model_evaluation: EvaluationReport,
    mlflow_tracking: MlflowTracking,
    notifier: Notifier,
) -> dg.Output[RegisteredModelVersion]:
    """Registry version of the model: @challenger always, @champion when it beats the champion."""
    from mlops_assets.ml.promotion import GateDecision, GateSettings, champion_gate
    from mlops_assets.tracking.registry import find_registration, move_aliases_after_gate

    if model_evaluation.model_uri != trained_model.model_uri:
        raise dg.Failure(
            allow_retries=False,
            description=(
                f"model_evaluation scored {model_evaluation.model_uri} but trained_model is "
                f"{trained_model.model_uri}: materialize model_evaluation first."
            ),
        )
    name, client = mlflow_tracking.model_name, mlflow_tracking.client()
    roc_auc = model_evaluation.metrics["roc_auc"]
    compared = model_evaluation.champion
    previous = compared.version if compared else None
    decision = champion_gate(
        model_evaluation.metrics,
        compared.auc if compared else None,
        compared.metrics if compared else None,
        GateSettings(**config.model_dump()),
    )
    tags = version_tags(context.run, trained_model, model_evaluation, decision)
    # One registration at a time: the pool, and the lock for when the pool's claim races.
    with mlflow_tracking.registry_lock(context), mlflow_tracking.asset_run(context) as run:
        # An earlier attempt (or the run this one re-executes) may have registered the version
        # and moved some aliases before MLflow went away: finish that registration, as decided.
        version = find_registration(client, name, tags)
        current = current_champion(mlflow_tracking)
        if current != previous and (version is None or current != version):
            raise dg.Failure(
                allow_retries=False,
                description=(
                    f"@champion is version {current} but model_evaluation compared against "
                    f"{previous or 'no champion'}: it moved since; "
                    "materialize model_evaluation again."
                ),
            )
        if version is None:
            # The decision is in the version's tags, written with it in one request.
            version = run.register_model(trained_model.model_uri, name, tags)
        else:
            recorded = client.get_model_version(name, version).tags
            decision = GateDecision(recorded["gate"] == "passed", recorded["gate_reason"])
            context.log.info(f"version {version} was registered by an earlier attempt: completing")
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
        moves = move_aliases_after_gate(
            client,
            name,
            version,
            promote=decision.promote,
            previous_champion=previous,
            dagster_run_id=context.run.run_id,
            reason=decision.reason,
        )
        run.log_params({"registered_model": name, "version": version, "promoted": decision.promote})
        run.set_tags({"gate_reason": decision.reason, **comparison_tags(compared)})
    aliases = [move.alias for move in moves]
    if decision.promote:
        notifier.send(
            title=f"{name}: version {version} is the new @champion",
            text=f"Previous champion: {previous or 'none'}. {decision.reason}",
            link=mlflow_tracking.model_version_url(version),
            log=context.log,
        )
    return dg.Output(
        RegisteredModelVersion(
            name=name,
            version=version,
            aliases=aliases,
            promoted=decision.promote,
            reason=decision.reason,
            previous_champion=previous,
        ),
        # The data version is the champion's: what scores downstream becomes stale exactly
        # when the champion changes, not when a losing challenger is registered.
        data_version=dg.DataVersion(
            champion_data_version(version if decision.promote else previous)
        ),
        metadata={
            "model_version": dg.MetadataValue.url(mlflow_tracking.model_version_url(version)),
            "version": dg.MetadataValue.text(version),
            "aliases": dg.MetadataValue.text(", ".join(f"@{alias}" for alias in aliases)),
            "promoted": dg.MetadataValue.bool(decision.promote),
            "gate_reason": dg.MetadataValue.text(decision.reason),
            "holdout_roc_auc": dg.MetadataValue.float(roc_auc),
            "previous_champion": dg.MetadataValue.text(previous or "none"),
            **{k: dg.MetadataValue.text(v) for k, v in comparison_tags(compared).items()},
            "alias_moves": dg.MetadataValue.md(
                "\n".join(
                    f"- @{m.alias}: {m.from_version or 'none'} -> {m.to_version} ({m.at})"
                    for m in moves
                )
            ),
            **run.metadata(),
        },
    )


@dg.asset_check(
    asset=registered_model,
    blocking=True,
    retry_policy=MLFLOW_RETRY,
    description="@champion exists and is a version that passed the gate (or a recorded "
    "rollback): nothing downstream uses an ungated model.",
)
def champion_passed_the_gate(mlflow_tracking: MlflowTracking) -> dg.AssetCheckResult:
    """Fail, and block downstream assets, when @champion never passed the gate; warn without one."""
    audit = champion_audit(mlflow_tracking)
    if audit.version is None:
        # Nothing can use a champion that does not exist: say so without failing the run.
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, description=audit.describe()
        )
    return dg.AssetCheckResult(
        passed=audit.usable,
        description=audit.describe(),
        metadata={
            "champion": dg.MetadataValue.text(audit.version),
            "gate": dg.MetadataValue.text(audit.gate),
            "reason": dg.MetadataValue.text(audit.move.reason if audit.move else "none"),
        },
    )
