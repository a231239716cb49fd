"""The trained model: candidates compared on a validation month, the best logged to MLflow."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from mlops_assets.defs.shared.keys import (
    CODE_VERSIONS,
    FULL_SEARCH,
    SEARCH_TAG,
    TRAINED_MODEL,
    TRIGGER_TAG,
)
from mlops_assets.defs.shared.lineage import (
    latest_materialization,
    model_code_versions,
    partition_datasets,
)
from mlops_assets.defs.shared.metadata import OWNERS, datasets_metadata
from mlops_assets.defs.shared.policies import (
    MLFLOW_RETRY,
    REFRESH_WHEN_INPUTS_CHANGE,
    TRAINING_POOL,
)
from mlops_assets.resources import MlflowTracking
from mlops_assets.resources.stored_partitions import StoredPartitions
from mlops_assets.tracking.datasets import (
    PartitionDataset,
    contexts_of_months,
    dataset_table,
)
from mlops_assets.tracking.handle import RunHandle
from mlops_assets.tracking.records import ModelReference

if TYPE_CHECKING:
    import pandas as pd

    from mlops_assets.ml.backtest import Fold
    from mlops_assets.ml.candidates import SearchRecord, SearchSpace, TrainingOutcome
    from mlops_assets.ml.training import RowSample, TemporalSplit


SEARCH_RECORD = "search_record"
"""``trained_model``'s metadata entry (and MLflow tag) with the last search's choice."""


class TrainingConfig(dg.Config):
    """The model candidates and their search, editable in the launchpad."""

    search: Literal["auto", "full"] = Field(
        default="auto",
        description="auto: search the candidates only when asked by the weekly schedule or a "
        "drift failure, when none was recorded, or when the search fields below (the grid, "
        "trials, max_iter, logistic_c, include_baseline, random_seed) or the features changed; "
        "otherwise refit the configuration the last search chose on the new training window. "
        "full: search now.",
    )

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
    row_budget: int = Field(
        default=500_000,
        ge=1_000,
        description="Training rows kept at most: beyond it, every (month, label) keeps the same "
        "seeded share. 2013 has ~300,000 (all kept); 500,000 fit in ~2 GB and ~80 s.",
    )
    workers: int = Field(
        default=0,
        ge=0,
        description="Candidates fitted at once, each in its own process; 0 means one per two "
        "cores (the boosting itself uses every core it is given).",
    )
    calibration: Literal["none", "sigmoid"] = Field(
        default="none",
        description="none: the booster's own probabilities, refitted on every training month. "
        "sigmoid: fitted on the training months but the last, its probabilities mapped by a "
        "sigmoid fitted on the last (the validation month). Measured on 2013's last four "
        "months, the map made the next month's calibration worse every time "
        "(docs/model-lifecycle.md).",
    )
    backtest_months: int = Field(
        default=4,
        ge=0,
        le=12,
        description="Rolling backtest: the chosen configuration refitted on the months before "
        "each of the last N months and scored on it (the held-out month's fold is the "
        "evaluation itself); 0 or 1 runs no extra fit.",
    )


def backtest_folds(
    by_month: "Mapping[str, pd.DataFrame]",
    holdout_month: str,
    outcome: "TrainingOutcome",
    config: TrainingConfig,
) -> "list[Fold]":
    """The backtest's folds before the held-out month: the chosen configuration refitted."""
    from mlops_assets.ml.backtest import backtest_months, rolling_backtest
    from mlops_assets.ml.candidates import refit

    months = backtest_months([*by_month, holdout_month], config.backtest_months)
    return rolling_backtest(
        by_month,
        [month for month in months if month != holdout_month],
        lambda before: (
            refit(
                before,
                outcome.chosen,
                config.random_seed,
                "backtest",
                config.calibration,
                outcome.threshold,
            ).model
        ),
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


def last_search(context: dg.AssetExecutionContext) -> "SearchRecord | None":
    """What the last search chose, from ``trained_model``'s latest materialization.

    None, so that the candidates are searched again, when no materialization records a
    search (the first model, one trained on a single month, or one from before the rule), or
    when the record cannot be read (logged as a warning).
    """
    from mlops_assets.ml.candidates import SearchRecord

    record = latest_materialization(context.instance, TRAINED_MODEL)
    materialization = record.asset_materialization if record else None
    entry = materialization.metadata.get(SEARCH_RECORD) if materialization else None
    if entry is None or not isinstance(entry.value, dict):
        return None
    try:
        return SearchRecord.from_dict(entry.value)
    except ValueError as error:
        context.log.warning(f"{error}: searching the candidates again")
        return None


def search_requested_by(tags: Mapping[str, str]) -> str | None:
    """What asked this run for a full search (its trigger), or None."""
    if tags.get(SEARCH_TAG) != FULL_SEARCH:
        return None
    return tags.get(TRIGGER_TAG, f"the run tag {SEARCH_TAG}: {FULL_SEARCH}")


@dataclass(frozen=True)
class TrainingData:
    """The training months as read (compact, within the budget), and the split they make."""

    by_month: dict[str, "pd.DataFrame"]
    split: "TemporalSplit"
    sample: "RowSample"


def training_data(features: StoredPartitions, config: TrainingConfig) -> TrainingData:
    """The newest month held out; the others read compact, one at a time, within the budget.

    Raises:
        dg.Failure: With fewer than two months, or a single class on either side.
    """
    from mlops_assets.ml.candidates import VALIDATION_KEYS
    from mlops_assets.ml.training import (
        TRAINING_COLUMNS,
        compact_features,
        read_training_months,
        temporal_split,
    )

    months = sorted(features)
    if len(months) < 2:
        raise dg.Failure(
            description=f"training needs at least two months of {features.asset}, got {months}",
            allow_retries=False,
        )
    validation_month = months[-2]  # the last training month: the candidates' comparison
    train, sample = read_training_months(
        months[:-1],
        features.count_rows,
        lambda month: features.read(
            month,
            [*TRAINING_COLUMNS, *VALIDATION_KEYS]
            if month == validation_month
            else TRAINING_COLUMNS,
        ),
        budget=config.row_budget,
        seed=config.random_seed,
        validation_columns=VALIDATION_KEYS,
    )
    holdout = compact_features(features.read(months[-1], TRAINING_COLUMNS))
    try:
        return TrainingData(train, temporal_split({**train, months[-1]: holdout}), sample)
    except ValueError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error


def sample_metadata(sample: "RowSample") -> dict[str, dg.MetadataValue]:
    """The row budget and what it did, for the materialization."""
    return {
        "row_budget": dg.MetadataValue.int(sample.budget),
        "rows_available": dg.MetadataValue.int(sample.available),
        "subsampled": dg.MetadataValue.bool(sample.subsampled),
        "sample_fraction": dg.MetadataValue.float(sample.fraction),
    }


def candidate_workers(config: TrainingConfig) -> int:
    """Worker processes for the candidates: as configured, else one per two cores."""
    from mlops_assets.ml.candidates import default_workers

    return config.workers or default_workers()


@dataclass(frozen=True)
class Trained:
    """What this materialization trained, and whether it searched the candidates to get it."""

    outcome: "TrainingOutcome"
    record: "SearchRecord | None"
    path: Literal["full", "refit"]
    reason: str


def search_or_refit(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    data: TrainingData,
    features_code_version: str,
) -> Trained:
    """Search the candidates when due, else refit the last search's choice on the new window.

    When the search is due is :func:`~mlops_assets.ml.candidates.decide_search`'s rule.
    """
    from mlops_assets.ml.candidates import (
        SearchRecord,
        decide_search,
        refit,
        search_fingerprint,
        select_and_train,
    )

    space = search_space(config)
    fingerprint = search_fingerprint(space, features_code_version)
    previous = last_search(context)
    decision = decide_search(
        config.search, search_requested_by(context.run.tags), previous, fingerprint
    )
    context.log.info(decision.reason)
    if previous is None or decision.search:  # decide_search searches without a previous one
        outcome = select_and_train(
            data.by_month, space, workers=candidate_workers(config), calibration=config.calibration
        )
        # With one training month nothing was compared: nothing to refit later.
        record = (
            SearchRecord(fingerprint, outcome.chosen, context.run.run_id, outcome.threshold)
            if outcome.results
            else None
        )
        return Trained(outcome, record, "full", decision.reason)
    outcome = refit(
        data.by_month,
        previous.chosen,
        config.random_seed,
        decision.reason,
        config.calibration,
        previous.threshold,
    )
    return Trained(outcome, previous, "refit", decision.reason)


def log_candidates(
    run: RunHandle, outcome: "TrainingOutcome", validation: "PartitionDataset | None"
) -> None:
    """One MLflow run per candidate compared, nested under the model's: params and scores.

    Each is also a LoggedModel (no artifacts: only the winner is kept) with its scores on the
    validation month, held out from its fit, so the experiment's Models view compares them.
    """
    for result in outcome.results:
        with run.child(
            f"candidate:{result.candidate.name}",
            tags={"candidate": result.candidate.name, "family": result.candidate.family},
        ) as candidate:
            params = {
                **result.candidate.params,
                "family": result.candidate.family,
                "validation_month": outcome.validation_month,
            }
            candidate.log_params(params)
            candidate.log_candidate_model(
                f"candidate-{result.candidate.name}",
                params,
                {
                    "validation_roc_auc": result.roc_auc,
                    "validation_log_loss": result.log_loss,
                    "validation_brier": result.brier,
                },
                validation,
            )
            gap = result.gap
            candidate.log_metrics(
                {
                    "fit_seconds": result.fit_seconds,
                    **(
                        {
                            "auc_gap_to_best": gap.delta,
                            "auc_gap_low": gap.low,
                            "auc_gap_high": gap.high,
                        }
                        if gap
                        else {}
                    ),
                }
            )


def model_metrics(
    outcome: "TrainingOutcome", folds: "list[Fold]", data: TrainingData
) -> dict[str, float]:
    """The model run's metrics: threshold, calibration, backtest folds, the training rows."""
    split, sample = data.split, data.sample
    calibration = outcome.calibration
    return {
        **({"operating_threshold": outcome.threshold} if outcome.threshold is not None else {}),
        **(
            {
                "validation_calibration_error_before": calibration.error_before,
                "validation_calibration_error_after": calibration.error_after,
            }
            if calibration
            else {}
        ),
        **{
            f"backtest_{fold.month}_{name}": value
            for fold in folds
            for name, value in fold.metrics.items()
        },
        "train_rows": len(split.train),
        "train_rows_available": sample.available,
        "train_sample_fraction": sample.fraction,
        "train_delayed_share": float(split.train["is_delayed"].mean()),
    }


def candidates_table(outcome: "TrainingOutcome") -> dg.MetadataValue:
    """The candidates compared, one row each, as the UI shows them."""
    rows = [result.as_row() for result in outcome.results]
    return dg.MetadataValue.table(
        records=[dg.TableRecord(row) for row in rows],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn(name, type="string" if isinstance(v, str) else "float")
                for name, v in (rows[0] if rows else {}).items()
            ]
        ),
    )


@dg.asset(
    group_name="training",
    kinds={"sklearn", "mlflow"},
    owners=OWNERS,
    code_version=CODE_VERSIONS[TRAINED_MODEL],
    retry_policy=MLFLOW_RETRY,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    io_manager_key="record_io_manager",
    pool=TRAINING_POOL,
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    flight_features: StoredPartitions,
    mlflow_tracking: MlflowTracking,
) -> dg.Output[ModelReference]:
    """The last search's best candidate (searched again when due), fitted on all training months."""
    from mlops_assets.ml.columns import FEATURE_COLUMNS
    from mlops_assets.ml.drift import REFERENCE_ARTIFACT, profile_training_window
    from mlops_assets.ml.training import serving_dtypes
    from mlops_assets.tracking.provenance import provenance_tags

    with mlflow_tracking.asset_run(context) as run:
        data = training_data(flight_features, config)
        split, sample = data.split, data.sample
        if sample.subsampled:
            context.log.info(
                f"{sample.available:,} training rows exceed the budget of {sample.budget:,}: "
                f"kept {sample.kept:,}, {sample.fraction:.2%} of every month and label"
            )
        months = [*split.train_months, split.holdout_month]
        code_versions = model_code_versions()
        # Each month read, as an MLflow dataset whose digest is its Dagster data version.
        datasets = partition_datasets(context.instance, flight_features, months)
        tags = provenance_tags(
            data_versions={month: dataset.digest for month, dataset in datasets.items()},
            code_versions=code_versions,
            training_config=config.model_dump(),
        )
        run.set_tags(tags)
        run.log_params(
            {
                **config.model_dump(exclude={"workers"}),
                "train_months": ",".join(split.train_months),
                "holdout_month": split.holdout_month,
                "features": len(FEATURE_COLUMNS),
            }
        )
        trained = search_or_refit(context, config, data, code_versions["flight_features"])
        outcome, record = trained.outcome, trained.record
        contexts = contexts_of_months(
            split.train_months, outcome.validation_month, split.holdout_month
        )
        inputs = {datasets[month]: context for month, context in contexts.items()}
        run.log_datasets(inputs)
        folds = backtest_folds(data.by_month, split.holdout_month, outcome, config)
        validation = outcome.validation_month
        log_candidates(run, outcome, datasets[validation] if validation else None)
        run.set_tags(
            {
                "candidate": outcome.chosen.name,
                "selection": outcome.selection,
                "search": trained.path,
                **({SEARCH_RECORD: json.dumps(record.as_dict(), sort_keys=True)} if record else {}),
                "subsampled": str(sample.subsampled).lower(),
            }
        )
        run.log_params({f"chosen.{k}": v for k, v in outcome.chosen.params.items()})
        run.log_metrics(model_metrics(outcome, folds, data))
        # What feature_drift measures months against: the rows this model was fitted on.
        drift_reference = profile_training_window(
            split.train,
            split.train_months,
            lambda rows: outcome.model.predict_proba(rows)[:, 1],
            seed=config.random_seed,
        )
        run.log_text(drift_reference.to_json(), REFERENCE_ARTIFACT)
        info = run.log_model(
            outcome.model,
            serving_dtypes(split.holdout.head(5)),
            {
                "candidate": outcome.chosen.name,
                "family": outcome.chosen.family,
                **outcome.chosen.params,
                "train_months": ",".join(split.train_months),
            },
        )
    reference = ModelReference(
        model_uri=info.model_uri,
        model_id=info.model_id or "",
        run_id=run.run_id,
        train_months=split.train_months,
        holdout_month=split.holdout_month,
        train_rows=len(split.train),
        candidate=outcome.chosen.name,
        validation_month=outcome.validation_month,
        search=trained.path,
        provenance=tags,
        threshold=outcome.threshold,
        backtest=[fold.as_row() for fold in folds],
    )
    return dg.Output(
        reference,
        metadata={
            "model_uri": dg.MetadataValue.text(info.model_uri),
            "candidate": dg.MetadataValue.text(outcome.chosen.name),
            "selection": dg.MetadataValue.text(outcome.selection),
            "search": dg.MetadataValue.text(trained.path),
            "search_reason": dg.MetadataValue.text(trained.reason),
            **({SEARCH_RECORD: dg.MetadataValue.json(record.as_dict())} if record else {}),
            "candidates": candidates_table(outcome),
            "validation_month": dg.MetadataValue.text(outcome.validation_month or "none"),
            "operating_threshold": dg.MetadataValue.float(
                outcome.threshold if outcome.threshold is not None else float("nan")
            ),
            "calibration": dg.MetadataValue.json(
                outcome.calibration.as_dict() if outcome.calibration else {"mode": "none"}
            ),
            "train_rows": dg.MetadataValue.int(len(split.train)),
            **sample_metadata(sample),
            "partitions": dg.MetadataValue.json(sorted(flight_features)),
            "train_months": dg.MetadataValue.json(split.train_months),
            "holdout_month": dg.MetadataValue.text(split.holdout_month),
            "git_commit": dg.MetadataValue.text(tags["git_commit"]),
            **datasets_metadata(dataset_table(inputs)),
            **run.metadata(),
        },
    )
