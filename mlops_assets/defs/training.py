"""The trained model: fitted on every month before the newest, logged to MLflow."""

import dagster as dg
import pandas as pd
from pydantic import Field

from mlops_assets.defs.metadata import OWNERS
from mlops_assets.defs.policies import MLFLOW_RETRY, REFRESH_WHEN_INPUTS_CHANGE
from mlops_assets.records import ModelReference
from mlops_assets.resources import MlflowTracking


class TrainingConfig(dg.Config):
    """Hyper-parameters of the HistGradientBoosting classifier, editable in the launchpad."""

    learning_rate: float = Field(
        default=0.1, gt=0, le=1, description="Shrinkage of each boosting step."
    )
    max_iter: int = Field(default=300, ge=1, le=5000, description="Boosting iterations.")
    max_leaf_nodes: int = Field(default=31, ge=2, description="Leaves per tree.")
    min_samples_leaf: int = Field(default=20, ge=1, description="Minimum rows in a leaf.")
    l2_regularization: float = Field(default=0.0, ge=0, description="L2 penalty on leaf values.")
    random_seed: int = Field(default=42, description="Seed of every random choice in training.")


@dg.asset(
    group_name="training",
    kinds={"sklearn", "mlflow"},
    owners=OWNERS,
    code_version="2",
    retry_policy=MLFLOW_RETRY,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    io_manager_key="record_io_manager",
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    flight_features: dict[str, pd.DataFrame],
    mlflow_tracking: MlflowTracking,
) -> dg.Output[ModelReference]:
    """HistGradientBoosting classifier trained on all months but the newest, logged to MLflow."""
    import mlflow

    from mlops_assets.ml.features import FEATURE_COLUMNS
    from mlops_assets.ml.packaging import log_pyfunc_model
    from mlops_assets.ml.training import TrainingSettings, temporal_split, train_classifier

    with mlflow_tracking.asset_run(context) as run:
        split = temporal_split(flight_features)
        mlflow.log_params(
            {
                **config.model_dump(),
                "train_months": ",".join(split.train_months),
                "holdout_month": split.holdout_month,
                "features": len(FEATURE_COLUMNS),
            }
        )
        mlflow.log_metrics(
            {
                "train_rows": len(split.train),
                "train_delayed_share": float(split.train["is_delayed"].mean()),
            }
        )
        pipeline = train_classifier(split.train, TrainingSettings(**config.model_dump()))
        mlflow.log_metric("boosting_iterations", int(pipeline[-1].n_iter_))
        info = log_pyfunc_model(pipeline, split.holdout[list(FEATURE_COLUMNS)].head(5))
    reference = ModelReference(
        model_uri=info.model_uri,
        model_id=info.model_id or "",
        run_id=run.run_id,
        train_months=split.train_months,
        holdout_month=split.holdout_month,
        train_rows=len(split.train),
    )
    return dg.Output(
        reference,
        metadata={
            "model_uri": dg.MetadataValue.text(info.model_uri),
            "train_rows": dg.MetadataValue.int(len(split.train)),
            "partitions": dg.MetadataValue.json(sorted(flight_features)),
            "train_months": dg.MetadataValue.json(split.train_months),
            "holdout_month": dg.MetadataValue.text(split.holdout_month),
            **run.metadata(),
        },
    )
