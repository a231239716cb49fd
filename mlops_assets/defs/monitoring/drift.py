"""Feature drift: each month against @champion's training rows, and the check that gates it.

The closed loop: a month lands (``month_job``) or is scored (``scoring_job``), and
``feature_drift`` measures it against the reference ``trained_model`` recorded for the
``@champion`` version; the check ``drift_within_thresholds`` fails when a gating feature or
the prediction moved past the fail threshold; ``drift_retrain_sensor``
(:mod:`~mlops_assets.defs.monitoring.drift_sensor`) then requests one ``retrain_job`` run
(train, evaluate, register), whose gate decides whether the new version becomes
``@champion``.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from mlops_assets.defs.model.champion import usable_champion
from mlops_assets.defs.shared.keys import CODE_VERSIONS, DRIFT_CHECK, FEATURE_DRIFT
from mlops_assets.defs.shared.lineage import partition_datasets
from mlops_assets.defs.shared.metadata import datasets_metadata, table_metadata
from mlops_assets.defs.shared.partitions import MONTHS, month_asset, month_step, months_of
from mlops_assets.defs.shared.policies import MLFLOW_RETRY
from mlops_assets.defs.shared.tables import DataFrame, MonthFrames
from mlops_assets.ml.columns import SEASONAL_FEATURES
from mlops_assets.resources import MlflowTracking
from mlops_assets.resources.stored_partitions import StoredPartitions
from mlops_assets.tracking.datasets import dataset_row, merged_contexts


class DriftConfig(dg.Config):
    """Thresholds of the population stability index (PSI), and the features that only warn."""

    warn_psi: float = Field(
        default=0.1,
        ge=0,
        description="PSI above this is a moderate shift: the drift check warns.",
    )
    fail_psi: float = Field(
        default=0.25,
        ge=0,
        description="PSI above this is a major shift: the drift check fails (severity ERROR) "
        "when a gating feature or the prediction is above it, and drift_retrain_sensor "
        "retrains. Must not be below warn_psi.",
    )
    seasonal_features: list[str] = Field(
        default=list(SEASONAL_FEATURES),
        description="Features measured and shown, but that cannot fail the check alone: a "
        "month's weather is a narrow slice of a multi-month training window (2013: temp PSI "
        "1.2 to 3.1 every month); the 28-day histories' flight counts follow the schedule's "
        "calendar and start from nothing in the data's first month. Empty the list to let "
        "them fail it too.",
    )


@dataclass(frozen=True)
class ChampionReference:
    """The @champion version and the MLflow run that recorded its drift reference."""

    version: str
    training_run: str


def _champion_reference(
    context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking
) -> ChampionReference | str:
    """The champion to measure against, or why there is none to measure against."""
    from mlops_assets.ml.drift import REFERENCE_ARTIFACT

    version, why = usable_champion(context.instance, mlflow_tracking)
    if version is None:
        return why
    client, name = mlflow_tracking.client(), mlflow_tracking.model_name
    run_id = client.get_model_version(name, version).tags.get("training_run_id", "")
    folder = REFERENCE_ARTIFACT.rsplit("/", 1)[0]
    if not run_id or REFERENCE_ARTIFACT not in {
        a.path for a in client.list_artifacts(run_id, folder)
    }:
        return (
            f"@champion version {version} records no drift reference "
            f"({REFERENCE_ARTIFACT} in its training run {run_id or '?'}): it was trained before "
            "drift monitoring; run retrain_job to train one that does"
        )
    return ChampionReference(version=version, training_run=run_id)


def _drift_table(table: DataFrame) -> dg.MetadataValue:
    """The drift table as the UI shows it: feature, kind, PSI, status, gating."""
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "feature": str(row["feature"]),
                    "kind": str(row["kind"]),
                    "psi": round(float(row["psi"]), 4),
                    "status": str(row["status"]),
                    "gating": bool(row["gating"]),
                }
            )
            for row in table.to_dict("records")
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("feature", "string"),
                dg.TableColumn("kind", "string"),
                dg.TableColumn("psi", "float", description="population stability index"),
                dg.TableColumn("status", "string", description="ok, warn or fail"),
                dg.TableColumn("gating", "bool", description="false: seasonal, only warns"),
            ]
        ),
    )


DRIFT_CHECK_SPEC = dg.AssetCheckSpec(
    DRIFT_CHECK.name,
    asset=FEATURE_DRIFT,
    partitions_def=MONTHS,
    description="Warns when a feature or the prediction moved past warn_psi (default 0.1); "
    "fails, severity ERROR, when a gating feature or the prediction moved past fail_psi "
    "(default 0.25), which makes drift_retrain_sensor retrain.",
)


def _drift_evaluation(month: str, table: DataFrame) -> dg.AssetCheckEvaluation:
    """The drift check on ``month``: warns past warn_psi, fails (ERROR) past fail_psi."""
    from mlops_assets.ml.drift import judge

    verdict = judge(table)
    return dg.AssetCheckEvaluation(
        asset_key=DRIFT_CHECK_SPEC.asset_key,
        check_name=DRIFT_CHECK_SPEC.name,
        passed=verdict.outcome == "ok",
        severity=dg.AssetCheckSeverity.ERROR
        if verdict.outcome == "fail"
        else dg.AssetCheckSeverity.WARN,
        description=verdict.describe(),
        metadata={
            "outcome": dg.MetadataValue.text(verdict.outcome),
            "failing_features": dg.MetadataValue.json(list(verdict.failing)),
            "flagged": dg.MetadataValue.md(
                "\n".join(
                    f"- {feature}: {psi:.3f} ({status}{'' if gating else ', seasonal'})"
                    for feature, psi, status, gating in verdict.flagged
                )
                or "none"
            ),
            "max_psi": dg.MetadataValue.float(verdict.largest[1]),
            "max_psi_feature": dg.MetadataValue.text(verdict.largest[0]),
        },
        blocking=False,
        partition=month,
    )


@month_asset(
    "feature_drift",
    group_name="monitoring",
    kinds={"pandas", "mlflow"},
    code_version=CODE_VERSIONS[FEATURE_DRIFT],
    retry_policy=MLFLOW_RETRY,
    # Not an input: the champion and its reference are read from the registry; the data
    # version of registered_model (the champion's) makes this stale when the champion changes.
    deps=["registered_model"],
    check_specs=[DRIFT_CHECK_SPEC],
)
def feature_drift(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    flight_features: StoredPartitions,
    mlflow_tracking: MlflowTracking,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output[MonthFrames]]:
    """PSI of each feature and of the prediction: the month against @champion's training rows."""
    # No champion (or one without a recorded reference) yet: nothing to measure against,
    # which must not fail the month's run; nothing is materialized and the log says why.
    # Each month's table is checked at once (drift_within_thresholds, on its partition).
    from mlops_assets.ml import drift
    from mlops_assets.ml.columns import FEATURE_COLUMNS
    from mlops_assets.ml.packaging import OUTPUT_COLUMN

    months = months_of(context)
    try:
        thresholds = drift.DriftThresholds(warn=config.warn_psi, fail=config.fail_psi)
    except ValueError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error
    unknown = sorted(set(config.seasonal_features) - set(FEATURE_COLUMNS))
    if unknown:
        raise dg.Failure(
            description=f"seasonal_features names no feature: {unknown}", allow_retries=False
        )
    target = _champion_reference(context, mlflow_tracking)
    if isinstance(target, str):
        context.log.warning(f"drift of {', '.join(months)} not measured: {target}")
        return
    tables: dict[str, DataFrame] = {}
    with mlflow_tracking.asset_run(context) as run:
        reference = drift.DriftReference.from_json(
            run.load_text(f"runs:/{target.training_run}/{drift.REFERENCE_ARTIFACT}")
        )
        model = run.load_model(mlflow_tracking.version_uri(target.version))
        run.log_params(
            {
                "months": ",".join(months),
                "model_version": target.version,
                "reference_months": ",".join(reference.months),
                "warn_psi": thresholds.warn,
                "fail_psi": thresholds.fail,
                "seasonal_features": ",".join(config.seasonal_features),
            }
        )
        datasets = partition_datasets(context.instance, flight_features, months)
        # The reference is the rows the champion was fitted on: its training run's inputs.
        fitted_on = run.datasets_of(target.training_run, ("training", "validation"))
        inputs = merged_contexts(
            [
                *((datasets[month].entity(), "scoring") for month in months),
                *((dataset, "drift reference") for dataset in fitted_on),
            ]
        )
        run.log_dataset_entities(inputs)
        for month in months:
            features = flight_features[month]
            scored = drift.sample_rows(features, drift.MONTH_SCORE_ROWS, seed=0)
            scores = model.predict(scored[list(FEATURE_COLUMNS)])[OUTPUT_COLUMN].to_numpy()
            report = drift.measure_drift(reference, features, scores)
            table = report.to_frame(thresholds, config.seasonal_features)
            verdict = drift.judge(table)
            prediction_psi = report.prediction.psi if report.prediction else float("nan")
            run.log_metrics(
                {
                    **{f"psi/{entry.feature}": entry.psi for entry in report.entries},
                    "max_psi": report.max_psi,
                    "prediction_psi": prediction_psi,
                    "features_above_fail": int((table["status"] == "fail").sum()),
                    "features_above_warn": int((table["status"] != "ok").sum()),
                    "scored_rows": len(scored),
                },
                step=month_step(month),
            )
            run.set_tag(f"drift_outcome/{month}", verdict.outcome)
            run.log_table(table, artifact_file=f"drift/{month}/feature_drift.json")
            context.add_asset_metadata(
                {
                    "drift": _drift_table(table),
                    "outcome": dg.MetadataValue.text(verdict.outcome),
                    "summary": dg.MetadataValue.text(verdict.describe()),
                    "prediction_psi": dg.MetadataValue.float(prediction_psi),
                    "max_psi": dg.MetadataValue.float(report.max_psi),
                    "max_psi_feature": dg.MetadataValue.text(verdict.largest[0]),
                    "month_rows": dg.MetadataValue.int(report.rows),
                    "scored_rows": dg.MetadataValue.int(len(scored)),
                    **table_metadata(table),
                },
                partition_key=month,
            )
            yield _drift_evaluation(month, table)
            tables[month] = table
    yield dg.Output(
        tables,
        output_name="feature_drift",
        metadata={
            "warn_psi": dg.MetadataValue.float(thresholds.warn),
            "fail_psi": dg.MetadataValue.float(thresholds.fail),
            "model_version": dg.MetadataValue.text(target.version),
            "model_version_url": dg.MetadataValue.url(
                mlflow_tracking.model_version_url(target.version)
            ),
            "reference_months": dg.MetadataValue.json(list(reference.months)),
            **datasets_metadata([dataset_row(dataset, use) for dataset, use in inputs]),
            **run.metadata(),
        },
    )
