"""Evaluation of the trained model on the held-out month."""

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from mlops_assets.defs.model.champion import current_champion
from mlops_assets.defs.shared.keys import CODE_VERSIONS, MODEL_EVALUATION
from mlops_assets.defs.shared.lineage import partition_datasets
from mlops_assets.defs.shared.metadata import OWNERS, datasets_metadata, png_markdown
from mlops_assets.defs.shared.policies import MLFLOW_RETRY, REFRESH_WHEN_INPUTS_CHANGE
from mlops_assets.resources import MlflowTracking
from mlops_assets.resources.stored_partitions import StoredPartitions
from mlops_assets.tracking.datasets import dataset_table
from mlops_assets.tracking.records import (
    ChampionComparison,
    EvaluationReport,
    ModelReference,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlops_assets.ml.evaluation import ClassificationMetrics
    from mlops_assets.resources import AssetRun


class EvaluationConfig(dg.Config):
    """How the held-out month is scored."""

    threshold: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Operating threshold: a flight is flagged late at this probability or above. "
        "None: the model's own, chosen on its validation month (maximum F1), else 0.5.",
    )
    importance_rows: int = Field(
        default=5000, ge=100, description="Held-out rows sampled for permutation importance."
    )
    random_seed: int = Field(
        default=42, description="Seed of the importance sample, permutations and bootstrap."
    )
    bootstrap_resamples: int = Field(
        default=1000,
        ge=1000,
        description="Paired bootstrap resamples of the AUC difference against the champion; "
        "each draws the held-out month's days (local dates of departure) with replacement.",
    )
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1, description="Two-sided confidence of the AUC interval."
    )


DEFAULT_THRESHOLD = 0.5
"""The threshold of a model that chose none (trained on a single month) when none is set."""


def operating_threshold(config: EvaluationConfig, trained_model: ModelReference) -> float:
    """The configured threshold, else the model's own, else :data:`DEFAULT_THRESHOLD`."""
    if config.threshold is not None:
        return config.threshold
    if trained_model.threshold is not None:
        return trained_model.threshold
    return DEFAULT_THRESHOLD


def holdout_fold(
    trained_model: ModelReference, holdout_month: str, metrics: "ClassificationMetrics"
) -> dict[str, float | int | str]:
    """The backtest's last fold: the held-out evaluation itself, as a backtest row."""
    from mlops_assets.ml.backtest import BACKTEST_METRICS

    values = metrics.as_dict()
    return {
        "month": holdout_month,
        "trained_on": f"{trained_model.train_months[0]}..{trained_model.train_months[-1]}",
        "rows": metrics.rows,
        **{name: values[name] for name in BACKTEST_METRICS},
    }


def backtest_metadata(
    folds: list[dict[str, float | int | str]], summary: dict[str, float]
) -> dict[str, dg.MetadataValue]:
    """The backtest's table (one row per month) and each metric's mean and sd."""
    rows = [
        {k: round(v, 4) if isinstance(v, float) else v for k, v in fold.items()} for fold in folds
    ]
    return {
        "backtest": dg.MetadataValue.table(
            records=[dg.TableRecord(row) for row in rows],
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn(name, type="string" if isinstance(v, str) else "float")
                    for name, v in rows[0].items()
                ]
            ),
        ),
        "backtest_roc_auc": dg.MetadataValue.text(
            f"{summary['roc_auc_mean']:.4f} +/- {summary['roc_auc_sd']:.4f} over {len(folds)} "
            f"months ({folds[0]['month']}..{folds[-1]['month']})"
        ),
        **{f"backtest_{key}": dg.MetadataValue.float(value) for key, value in summary.items()},
    }


def compare_with_champion(
    run: "AssetRun",
    mlflow_tracking: MlflowTracking,
    config: EvaluationConfig,
    holdout: "pd.DataFrame",
    proba: "np.ndarray",
    threshold: float,
) -> ChampionComparison | None:
    """@champion scored on the same held-out rows, and the paired interval of the AUC gap.

    None when there is no champion. The comparison is logged to ``run``.
    """
    from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
    from mlops_assets.ml.evaluation import classification_metrics
    from mlops_assets.ml.packaging import OUTPUT_COLUMN
    from mlops_assets.ml.promotion import DEPARTURE_COLUMN, departure_days, paired_bootstrap_auc

    version = current_champion(mlflow_tracking)
    if version is None:
        return None
    y_true = holdout[TARGET].to_numpy()
    scorer = run.load_model(mlflow_tracking.version_uri(version))
    champion_proba = scorer.predict(holdout[list(FEATURE_COLUMNS)])[OUTPUT_COLUMN].to_numpy()
    comparison = paired_bootstrap_auc(
        y_true,
        proba,
        champion_proba,
        departure_days(holdout[DEPARTURE_COLUMN]),
        resamples=config.bootstrap_resamples,
        confidence=config.confidence,
        seed=config.random_seed,
    )
    champion = ChampionComparison(
        version=version,
        metrics=classification_metrics(y_true, champion_proba, threshold).as_dict(),
        auc=comparison,
    )
    run.log_params({"champion_version": version})
    run.log_metrics(
        {
            **{f"champion_{k}": v for k, v in champion.metrics.items()},
            "auc_delta": comparison.delta,
            "auc_delta_low": comparison.low,
            "auc_delta_high": comparison.high,
            "auc_delta_days": comparison.blocks,
        }
    )
    return champion


def champion_metadata(champion: ChampionComparison | None) -> dict[str, dg.MetadataValue]:
    """The comparison with @champion, for the materialization."""
    if champion is None:
        return {"champion_version": dg.MetadataValue.text("none")}
    auc = champion.auc
    return {
        "champion_version": dg.MetadataValue.text(champion.version),
        "champion_roc_auc": dg.MetadataValue.float(auc.champion_auc),
        "auc_delta": dg.MetadataValue.float(auc.delta),
        "auc_delta_interval": dg.MetadataValue.text(
            f"[{auc.low:+.4f}, {auc.high:+.4f}] ({auc.confidence:.0%}, {auc.resamples} "
            f"resamples of {auc.blocks} days)"
        ),
    }


@dg.asset(
    group_name="evaluation",
    kinds={"sklearn", "mlflow"},
    owners=OWNERS,
    code_version=CODE_VERSIONS[MODEL_EVALUATION],
    retry_policy=MLFLOW_RETRY,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    io_manager_key="record_io_manager",
)
def model_evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    flight_features: StoredPartitions,
    trained_model: ModelReference,
    mlflow_tracking: MlflowTracking,
) -> dg.Output[EvaluationReport]:
    """Held-out metrics and plots of the new model and of the champion, on the same rows."""
    from mlops_assets.ml.backtest import summarize
    from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
    from mlops_assets.ml.evaluation import (
        classification_metrics,
        diagnostic_plots,
        feature_importance,
    )
    from mlops_assets.ml.packaging import OUTPUT_COLUMN
    from mlops_assets.ml.promotion import DEPARTURE_COLUMN

    with mlflow_tracking.asset_run(context) as run:
        holdout_month = max(flight_features)
        if holdout_month != trained_model.holdout_month:
            raise dg.Failure(
                allow_retries=False,
                description=(
                    f"flight_features now holds out month {holdout_month} but "
                    f"trained_model held out month {trained_model.holdout_month}: "
                    "materialize trained_model first."
                ),
            )
        holdout_dataset = partition_datasets(context.instance, flight_features, [holdout_month])
        inputs = {holdout_dataset[holdout_month]: "holdout"}
        run.log_datasets(inputs)
        threshold = operating_threshold(config, trained_model)
        run.log_params(
            {
                **config.model_dump(),
                "operating_threshold": threshold,
                "model_uri": trained_model.model_uri,
            }
        )
        holdout = flight_features.read(holdout_month, [*FEATURE_COLUMNS, TARGET, DEPARTURE_COLUMN])
        features = holdout[list(FEATURE_COLUMNS)]
        y_true = holdout[TARGET].to_numpy()
        model = run.load_model(trained_model.model_uri)
        proba = model.predict(features)[OUTPUT_COLUMN].to_numpy()
        metrics = classification_metrics(y_true, proba, threshold)
        run.log_metrics(
            {f"holdout_{key}": value for key, value in metrics.as_dict().items()},
            model_id=trained_model.model_id or None,
            dataset=holdout_dataset[holdout_month],
        )
        importance = feature_importance(
            model.unwrap_python_model().classifier,
            features,
            y_true,
            sample_rows=config.importance_rows,
            seed=config.random_seed,
        )
        plots = diagnostic_plots(y_true, proba, threshold, importance)
        run.log_files(plots, "plots")
        run.log_dict(importance.round(6).to_dict(), "feature_importance.json")
        champion = compare_with_champion(run, mlflow_tracking, config, holdout, proba, threshold)
        folds = [*trained_model.backtest, holdout_fold(trained_model, holdout_month, metrics)]
        backtest = summarize(folds)
        run.log_metrics(
            {f"backtest_{key}": value for key, value in backtest.items()},
            model_id=trained_model.model_id or None,
        )
        run.log_dict({"folds": folds, "summary": backtest}, "backtest.json")
    report = EvaluationReport(
        model_uri=trained_model.model_uri,
        holdout_month=holdout_month,
        run_id=run.run_id,
        metrics=metrics.as_dict(),
        champion=champion,
        config={**config.model_dump(), "threshold": threshold},
    )
    return dg.Output(
        report,
        metadata={
            **{
                f"holdout_{key}": dg.MetadataValue.float(value)
                for key, value in metrics.as_dict().items()
            },
            **{name.removesuffix(".png"): png_markdown(name, png) for name, png in plots.items()},
            "operating_threshold": dg.MetadataValue.float(threshold),
            **backtest_metadata(folds, backtest),
            **champion_metadata(champion),
            **datasets_metadata(dataset_table(inputs)),
            **run.metadata(),
        },
    )
