"""Batch predictions: each month's flights scored by the champion of the moment."""

import dagster as dg

from mlops_assets.defs.model.champion import usable_champion
from mlops_assets.defs.monitoring.freshness import PREDICTIONS_FRESHNESS
from mlops_assets.defs.shared.keys import CODE_VERSIONS, FLIGHT_DELAY_PREDICTIONS
from mlops_assets.defs.shared.lineage import partition_datasets
from mlops_assets.defs.shared.metadata import OWNERS, datasets_metadata, table_metadata
from mlops_assets.defs.shared.partitions import MONTH_BATCHES, MONTHS, month_step, months_of
from mlops_assets.defs.shared.policies import MLFLOW_RETRY
from mlops_assets.defs.shared.tables import DataFrame, MonthFrames, table_type
from mlops_assets.resources import MlflowTracking
from mlops_assets.resources.stored_partitions import StoredPartitions
from mlops_assets.tracking.datasets import dataset_table


@dg.asset(
    group_name="scoring",
    kinds={"mlflow", "pandas"},
    owners=OWNERS,
    code_version=CODE_VERSIONS[FLIGHT_DELAY_PREDICTIONS],
    retry_policy=MLFLOW_RETRY,
    partitions_def=MONTHS,
    backfill_policy=MONTH_BATCHES,
    # Not an input: the champion is read from the registry, and the data version of
    # registered_model (the champion's) makes these predictions stale when it changes.
    deps=["registered_model"],
    dagster_type=table_type("flight_delay_predictions"),
    freshness_policy=PREDICTIONS_FRESHNESS,
)
def flight_delay_predictions(
    context: dg.AssetExecutionContext,
    flight_features: StoredPartitions,
    mlflow_tracking: MlflowTracking,
) -> dg.Output[MonthFrames]:
    """The month's flights scored by @champion, with the version that scored each row."""
    from mlops_assets.ml.packaging import OUTPUT_COLUMN
    from mlops_assets.ml.scoring import score_flights

    months = months_of(context)
    version, why = usable_champion(context.instance, mlflow_tracking)
    if version is None:
        raise dg.Failure(
            allow_retries=False,
            description=f"cannot score {', '.join(months)}: {why}. Materialize registered_model "
            "(or run rollback_job) so that a gated version is @champion and recorded.",
        )
    scored: dict[str, DataFrame] = {}
    with mlflow_tracking.asset_run(context) as run:
        model = run.load_model(mlflow_tracking.version_uri(version))
        run.log_params({"months": ",".join(months), "model_version": version})
        datasets = partition_datasets(context.instance, flight_features, months)
        inputs = {datasets[month]: "scoring" for month in months}
        run.log_datasets(inputs)
        for month in months:
            predictions = score_flights(flight_features[month], model.predict, version)
            rows = len(predictions)
            mean = float(predictions[OUTPUT_COLUMN].mean()) if rows else float("nan")
            observed = float(predictions["is_delayed"].mean()) if rows else float("nan")
            run.log_metrics({"rows": rows, "mean_delay_probability": mean}, step=month_step(month))
            context.add_asset_metadata(
                {
                    "mean_delay_probability": dg.MetadataValue.float(mean),
                    "observed_delayed_share": dg.MetadataValue.float(observed),
                    **table_metadata(predictions),
                },
                partition_key=month,
            )
            scored[month] = predictions
    return dg.Output(
        scored,
        metadata={
            "model_version": dg.MetadataValue.text(version),
            "model_version_url": dg.MetadataValue.url(mlflow_tracking.model_version_url(version)),
            **datasets_metadata(dataset_table(inputs)),
            **run.metadata(),
        },
    )
