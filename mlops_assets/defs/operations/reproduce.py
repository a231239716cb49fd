"""The reproduce job: retrain a registered version from its recorded inputs and compare metrics."""

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from mlops_assets.defs.model.training import (
    SEARCH_RECORD,
    TrainingConfig,
    TrainingData,
    candidate_workers,
    search_space,
    training_data,
)
from mlops_assets.defs.shared.lineage import (
    model_code_versions,
    partition_data_versions,
    partition_datasets,
)
from mlops_assets.defs.shared.policies import MLFLOW_RETRY, TRAINING_POOL
from mlops_assets.resources import MlflowTracking
from mlops_assets.resources.stored_partitions import PartitionStore
from mlops_assets.tracking.datasets import contexts_of_months

if TYPE_CHECKING:
    from mlops_assets.ml.candidates import TrainingOutcome

FEATURES = "flight_features"


class ReproduceConfig(dg.Config):
    """Which version to rebuild, and how close its metrics must come."""

    version: str = Field(description="Registered version of the model to reproduce.")
    tolerance: float = Field(
        default=1e-9,
        ge=0,
        description="Largest absolute difference allowed on any held-out metric. Training is "
        "seeded and deterministic on one machine; other CPUs or BLAS builds may differ by "
        "rounding.",
    )


def _retrain(
    trained: Mapping[str, str], data: TrainingData, training: TrainingConfig
) -> "TrainingOutcome":
    """The version's training again, from its training run's tags: its search, or its refit."""
    from mlops_assets.ml.candidates import SearchRecord, refit, select_and_train

    if trained.get("search") == "refit":
        # The version refitted what an earlier search chose: refit that configuration again.
        record = SearchRecord.from_dict(json.loads(trained[SEARCH_RECORD]))
        return refit(
            data.by_month,
            record.chosen,
            training.random_seed,
            "reproduced refit",
            training.calibration,
            record.threshold,
        )
    return select_and_train(
        data.by_month,
        search_space(training),
        workers=candidate_workers(training),
        calibration=training.calibration,
    )


@dg.op(
    retry_policy=MLFLOW_RETRY, pool=TRAINING_POOL, tags={"kind": "mlflow"}, out=dg.Out(dg.Nothing)
)
def reproduce_model_version(
    context: dg.OpExecutionContext,
    config: ReproduceConfig,
    mlflow_tracking: MlflowTracking,
    io_manager: dg.ResourceParam[PartitionStore],
) -> dg.Output[None]:
    """Retrain the version from the same partitions and configuration; report metric differences."""
    from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
    from mlops_assets.ml.evaluation import classification_metrics
    from mlops_assets.tracking import provenance
    from mlops_assets.tracking.registry import RegistryError, registered_version

    client, name = mlflow_tracking.client(), mlflow_tracking.model_name
    try:
        registered = registered_version(client, name, config.version)
    except RegistryError as error:
        raise dg.Failure(
            description=str(error),
            allow_retries=False,
        ) from error
    tags = registered.tags
    required = (*provenance.PROVENANCE_TAGS, provenance.EVALUATION_CONFIG_TAG)
    missing = [tag for tag in required if tag not in tags]
    if missing:
        raise dg.Failure(
            description=f"version {config.version} lacks the provenance tags {missing}: it "
            "was registered before versions recorded their inputs, and cannot be reproduced.",
            allow_retries=False,
        )
    recorded_data = json.loads(tags[provenance.DATA_VERSIONS_TAG])
    current_data = partition_data_versions(context.instance, dg.AssetKey(FEATURES), recorded_data)
    changed = {m: (v, current_data[m]) for m, v in recorded_data.items() if current_data[m] != v}
    if changed:
        raise dg.Failure(
            description=f"version {config.version} was trained on {FEATURES} partitions that have "
            "changed since (month: recorded -> now): "
            + "; ".join(f"{m}: {old} -> {new}" for m, (old, new) in sorted(changed.items()))
            + ". The lake keeps only the latest data of each month, so these inputs are gone.",
            allow_retries=False,
        )
    stored = io_manager.stored_partitions(FEATURES, sorted(recorded_data))
    training = TrainingConfig(**json.loads(tags[provenance.TRAINING_CONFIG_TAG]))
    data = training_data(stored, training)
    outcome = _retrain(client.get_run(tags["training_run_id"]).data.tags, data, training)
    threshold = float(json.loads(tags[provenance.EVALUATION_CONFIG_TAG])["threshold"])
    # Scored as model_evaluation scored it: the whole month, in the stored dtypes.
    holdout = stored.read(data.split.holdout_month, [*FEATURE_COLUMNS, TARGET])
    proba = outcome.model.predict_proba(holdout[list(FEATURE_COLUMNS)])[:, 1]
    reproduced = classification_metrics(holdout[TARGET].to_numpy(), proba, threshold)
    evaluation = client.get_run(tags["evaluation_run_id"]).data.metrics
    differences = {
        key: value - evaluation[f"holdout_{key}"]
        for key, value in reproduced.as_dict().items()
        if f"holdout_{key}" in evaluation
    }
    worst = max((abs(d) for d in differences.values()), default=0.0)
    code_now = model_code_versions()
    code_then = json.loads(tags[provenance.CODE_VERSIONS_TAG])
    then_and_now = {
        "git commit": (tags[provenance.GIT_COMMIT_TAG], provenance.git_commit()),
        "uv.lock": (tags[provenance.LOCK_HASH_TAG], provenance.lock_file_sha256()),
        **{
            f"code version of {asset}": (code_then.get(asset, "none"), version)
            for asset, version in code_now.items()
        },
    }
    differs = {what: pair for what, pair in then_and_now.items() if pair[0] != pair[1]}
    with mlflow_tracking.standalone_run(
        f"reproduce-v{config.version}",
        tags={
            "reproduces_version": config.version,
            "dagster.run_id": context.run_id,
            "candidate": outcome.chosen.name,
            "selection": outcome.selection,
            provenance.GIT_COMMIT_TAG: provenance.git_commit(),
        },
    ) as run:
        split = data.split
        read = partition_datasets(context.instance, stored, sorted(recorded_data))
        contexts = contexts_of_months(
            split.train_months, outcome.validation_month, split.holdout_month
        )
        run.log_datasets({read[month]: use for month, use in contexts.items()})
        run.log_metrics(
            {
                **{f"holdout_{k}": v for k, v in reproduced.as_dict().items()},
                **{f"difference_{k}": v for k, v in differences.items()},
                "max_abs_difference": worst,
            }
        )
    client.set_model_version_tag(name, config.version, "reproduced_by_run", context.run_id)
    client.set_model_version_tag(
        name, config.version, "reproduced_max_abs_difference", f"{worst:.3e}"
    )
    now = reproduced.as_dict()
    table = "\n".join(
        ["| metric | recorded | reproduced | difference |", "| --- | --- | --- | --- |"]
        + [
            f"| {k} | {evaluation[f'holdout_{k}']:.10f} | {now[k]:.10f} | {d:+.3e} |"
            for k, d in differences.items()
        ]
    )
    summary = (
        f"version {config.version} reproduced with candidate {outcome.chosen.name} "
        f"(recorded {tags.get('candidate', 'unknown')}): largest metric difference {worst:.3e}"
        + (f"; differs from then: {sorted(differs)}" if differs else "")
    )
    context.log.info(summary)
    problems = [
        *([f"above the tolerance {config.tolerance:g}"] if worst > config.tolerance else []),
        *(["another candidate won"] if outcome.chosen.name != tags.get("candidate") else []),
    ]
    if problems:
        raise dg.Failure(
            description=f"{summary}: {' and '.join(problems)}.\n{table}", allow_retries=False
        )
    return dg.Output(
        None,
        metadata={
            "summary": dg.MetadataValue.text(summary),
            "metrics": dg.MetadataValue.md(table),
            "max_abs_difference": dg.MetadataValue.float(worst),
            "differences": dg.MetadataValue.json(differences),
            "differs_from_then": dg.MetadataValue.json(
                {what: {"then": before, "now": after} for what, (before, after) in differs.items()}
            ),
            "mlflow_run": dg.MetadataValue.url(
                mlflow_tracking.run_url(run.experiment_id, run.run_id)
            ),
        },
    )


@dg.job(
    description="Retrain a registered version from the partitions, configuration and seed it "
    "recorded, and compare its held-out metrics with the recorded ones. Moves no alias."
)
def reproduce_job() -> None:
    """Reproduce a model version."""
    reproduce_model_version()
