"""The trained model: candidates compared on a validation month, the best logged to MLflow."""

from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd
from pydantic import Field

from mlops_assets.defs.lineage import model_code_versions, partition_data_versions
from mlops_assets.defs.metadata import OWNERS
from mlops_assets.defs.policies import MLFLOW_RETRY, REFRESH_WHEN_INPUTS_CHANGE, TRAINING_POOL
from mlops_assets.records import ModelReference
from mlops_assets.resources import MlflowTracking

if TYPE_CHECKING:
    from mlops_assets.ml.candidates import SearchSpace


class TrainingConfig(dg.Config):
    """The model candidates and their search, editable in the launchpad."""

    include_baseline: bool = Field(
        default=True, description="Let the logistic-regression baseline compete."
    )
    logistic_c: float = Field(
        default=1.0, gt=0, description="Inverse regularization strength of the baseline."
    )
    trials: int = Field(
        default=2,
        ge=0,
        le=24,
        description="HistGradientBoosting combinations drawn (seeded) from the grid below.",
    )
    learning_rates: list[float] = Field(
        default=[0.05, 0.1], description="Boosting grid: shrinkage of each step."
    )
    max_leaf_nodes: list[int] = Field(
        default=[15, 31, 63], description="Boosting grid: leaves per tree."
    )
    min_samples_leaf: list[int] = Field(
        default=[20, 200], description="Boosting grid: minimum rows in a leaf."
    )
    l2_regularization: list[float] = Field(
        default=[0.0, 1.0], description="Boosting grid: L2 penalty on leaf values."
    )
    max_iter: int = Field(default=300, ge=1, le=5000, description="Boosting iterations.")
    random_seed: int = Field(default=42, description="Seed of the draw and of every model.")
    workers: int = Field(
        default=0,
        ge=0,
        description="Candidates fitted at once, each in its own process; 0 means one per two "
        "cores (the boosting itself uses every core it is given).",
    )


def search_space(config: TrainingConfig) -> "SearchSpace":
    """The pure-ML search space of a training configuration."""
    from mlops_assets.ml.candidates import SearchSpace

    return SearchSpace(
        learning_rate=tuple(config.learning_rates),
        max_leaf_nodes=tuple(config.max_leaf_nodes),
        min_samples_leaf=tuple(config.min_samples_leaf),
        l2_regularization=tuple(config.l2_regularization),
        trials=config.trials,
        max_iter=config.max_iter,
        logistic_c=config.logistic_c,
        include_baseline=config.include_baseline,
        random_seed=config.random_seed,
    )


def candidate_workers(config: TrainingConfig) -> int:
    """Worker processes for the candidates: as configured, else one per two cores."""
    from mlops_assets.ml.candidates import default_workers

    return config.workers or default_workers()


@dg.asset(
    group_name="training",
    kinds={"sklearn", "mlflow"},
    owners=OWNERS,
    code_version="4",
    retry_policy=MLFLOW_RETRY,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    io_manager_key="record_io_manager",
    pool=TRAINING_POOL,
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    flight_features: dict[str, pd.DataFrame],
    mlflow_tracking: MlflowTracking,
) -> dg.Output[ModelReference]:
    """The best candidate on the validation month, refitted on all training months, in MLflow."""
    import mlflow

    from mlops_assets.ml.candidates import select_and_train
    from mlops_assets.ml.drift import REFERENCE_ARTIFACT, profile_training_window
    from mlops_assets.ml.features import FEATURE_COLUMNS
    from mlops_assets.ml.packaging import log_pyfunc_model
    from mlops_assets.ml.training import temporal_split
    from mlops_assets.provenance import provenance_tags

    with mlflow_tracking.asset_run(context) as run:
        split = temporal_split(flight_features)
        months = [*split.train_months, split.holdout_month]
        tags = provenance_tags(
            data_versions={
                month: version or "unknown"
                for month, version in partition_data_versions(
                    context.instance, dg.AssetKey("flight_features"), months
                ).items()
            },
            code_versions=model_code_versions(),
            training_config=config.model_dump(),
        )
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                **config.model_dump(exclude={"workers"}),
                "train_months": ",".join(split.train_months),
                "holdout_month": split.holdout_month,
                "features": len(FEATURE_COLUMNS),
            }
        )
        outcome = select_and_train(
            {month: flight_features[month] for month in split.train_months},
            search_space(config),
            workers=candidate_workers(config),
        )
        for result in outcome.results:
            with mlflow.start_run(
                experiment_id=run.experiment_id,
                run_name=f"candidate:{result.candidate.name}",
                nested=True,
                tags={"candidate": result.candidate.name, "family": result.candidate.family},
            ):
                mlflow.log_params(
                    {
                        **result.candidate.params,
                        "family": result.candidate.family,
                        "validation_month": outcome.validation_month,
                    }
                )
                mlflow.log_metrics(
                    {
                        "validation_roc_auc": result.roc_auc,
                        "validation_log_loss": result.log_loss,
                        "validation_brier": result.brier,
                        "fit_seconds": result.fit_seconds,
                    }
                )
        mlflow.set_tags({"candidate": outcome.chosen.name, "selection": outcome.selection})
        mlflow.log_params({f"chosen.{k}": v for k, v in outcome.chosen.params.items()})
        mlflow.log_metrics(
            {
                "train_rows": len(split.train),
                "train_delayed_share": float(split.train["is_delayed"].mean()),
            }
        )
        # What feature_drift measures months against: the rows this model was fitted on.
        drift_reference = profile_training_window(
            split.train,
            split.train_months,
            lambda rows: outcome.model.predict_proba(rows)[:, 1],
            seed=config.random_seed,
        )
        mlflow.log_text(drift_reference.to_json(), REFERENCE_ARTIFACT)
        info = log_pyfunc_model(outcome.model, split.holdout[list(FEATURE_COLUMNS)].head(5))
    reference = ModelReference(
        model_uri=info.model_uri,
        model_id=info.model_id or "",
        run_id=run.run_id,
        train_months=split.train_months,
        holdout_month=split.holdout_month,
        train_rows=len(split.train),
        candidate=outcome.chosen.name,
        validation_month=outcome.validation_month,
        provenance=tags,
    )
    rows = [result.as_row() for result in outcome.results]
    return dg.Output(
        reference,
        metadata={
            "model_uri": dg.MetadataValue.text(info.model_uri),
            "candidate": dg.MetadataValue.text(outcome.chosen.name),
            "selection": dg.MetadataValue.text(outcome.selection),
            "candidates": dg.MetadataValue.table(
                records=[dg.TableRecord(row) for row in rows],
                schema=dg.TableSchema(
                    columns=[
                        dg.TableColumn(name, type="string" if isinstance(v, str) else "float")
                        for name, v in (rows[0] if rows else {}).items()
                    ]
                ),
            ),
            "validation_month": dg.MetadataValue.text(outcome.validation_month or "none"),
            "train_rows": dg.MetadataValue.int(len(split.train)),
            "partitions": dg.MetadataValue.json(sorted(flight_features)),
            "train_months": dg.MetadataValue.json(split.train_months),
            "holdout_month": dg.MetadataValue.text(split.holdout_month),
            "git_commit": dg.MetadataValue.text(tags["git_commit"]),
            **run.metadata(),
        },
    )
