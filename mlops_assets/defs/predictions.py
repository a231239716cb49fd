"""Batch predictions: each month's flights scored by the champion of the moment."""

import dagster as dg

from mlops_assets.defs.freshness import PREDICTIONS_FRESHNESS
from mlops_assets.defs.metadata import OWNERS, table_metadata
from mlops_assets.defs.partitions import MONTHS, month_of
from mlops_assets.defs.policies import MLFLOW_RETRY
from mlops_assets.defs.registry import usable_champion
from mlops_assets.defs.tables import DataFrame, table_type
from mlops_assets.resources import MlflowTracking


@dg.asset(
    group_name="scoring",
    kinds={"mlflow", "pandas"},
    owners=OWNERS,
    code_version="1",
    retry_policy=MLFLOW_RETRY,
    partitions_def=MONTHS,
    # Not an input: the champion is read from the registry, and the data version of
    # registered_model (the champion's) makes these predictions stale when it changes.
    deps=["registered_model"],
    dagster_type=table_type("flight_delay_predictions"),
    freshness_policy=PREDICTIONS_FRESHNESS,
)
def flight_delay_predictions(
    context: dg.AssetExecutionContext,
    flight_features: DataFrame,
    mlflow_tracking: MlflowTracking,
) -> dg.Output[DataFrame]:
    """The month's flights scored by @champion, with the version that scored each row."""
    import mlflow

    from mlops_assets.ml.packaging import OUTPUT_COLUMN
    from mlops_assets.ml.scoring import score_flights

    month = month_of(context)
    version, why = usable_champion(context.instance, mlflow_tracking)
    if version is None:
        raise dg.Failure(
            allow_retries=False,
            description=f"cannot score {month}: {why}. Materialize registered_model (or run "
            "rollback_job) so that a gated version is @champion and recorded.",
        )
    with mlflow_tracking.asset_run(context) as run:
        model = mlflow.pyfunc.load_model(mlflow_tracking.version_uri(version))
        predictions = score_flights(flight_features, model.predict, version)
        mean = float(predictions[OUTPUT_COLUMN].mean()) if len(predictions) else float("nan")
        mlflow.log_params({"month": month, "model_version": version})
        mlflow.log_metrics({"rows": len(predictions), "mean_delay_probability": mean})
    return dg.Output(
        predictions,
        metadata={
            "model_version": dg.MetadataValue.text(version),
            "model_version_url": dg.MetadataValue.url(mlflow_tracking.model_version_url(version)),
            "mean_delay_probability": dg.MetadataValue.float(mean),
            "observed_delayed_share": dg.MetadataValue.float(
                float(predictions["is_delayed"].mean()) if len(predictions) else float("nan")
            ),
            **table_metadata(predictions),
            **run.metadata(),
        },
    )
