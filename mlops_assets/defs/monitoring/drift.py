"""Drift monitoring: each month against @champion's training rows, and retraining when it fails.

The closed loop: a month lands (``month_job``) or is scored (``scoring_job``), and
``feature_drift`` measures it against the reference ``trained_model`` recorded for the
``@champion`` version; the check ``drift_within_thresholds`` fails when a gating feature or
the prediction moved past the fail threshold; ``drift_retrain_sensor`` then requests one
``retrain_job`` run (train, evaluate, register), whose gate decides whether the new version
becomes ``@champion``.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from mlops_assets.defs.model.registry import usable_champion
from mlops_assets.defs.operations.jobs import retrain_job
from mlops_assets.defs.shared.metadata import SEARCH_TAG, TRIGGER_TAG, table_metadata
from mlops_assets.defs.shared.partitions import MONTHS, month_asset, month_step, months_of
from mlops_assets.defs.shared.policies import MLFLOW_RETRY
from mlops_assets.defs.shared.tables import DataFrame, MonthFrames
from mlops_assets.ml.columns import SEASONAL_FEATURES
from mlops_assets.resources import MlflowTracking

if TYPE_CHECKING:
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord

DRIFTED_MONTHS_TAG = "mlops/drifted_months"


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
    "drift_within_thresholds",
    asset="feature_drift",
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
    code_version="1",
    retry_policy=MLFLOW_RETRY,
    # Not an input: the champion and its reference are read from the registry; the data
    # version of registered_model (the champion's) makes this stale when the champion changes.
    deps=["registered_model"],
    check_specs=[DRIFT_CHECK_SPEC],
)
def feature_drift(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    flight_features: MonthFrames,
    mlflow_tracking: MlflowTracking,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output[MonthFrames]]:
    """PSI of each feature and of the prediction: the month against @champion's training rows."""
    # No champion (or one without a recorded reference) yet: nothing to measure against,
    # which must not fail the month's run; nothing is materialized and the log says why.
    # Each month's table is checked at once (drift_within_thresholds, on its partition).
    import mlflow

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
            mlflow.artifacts.load_text(f"runs:/{target.training_run}/{drift.REFERENCE_ARTIFACT}")
        )
        model = mlflow.pyfunc.load_model(mlflow_tracking.version_uri(target.version))
        mlflow.log_params(
            {
                "months": ",".join(months),
                "model_version": target.version,
                "reference_months": ",".join(reference.months),
                "warn_psi": thresholds.warn,
                "fail_psi": thresholds.fail,
                "seasonal_features": ",".join(config.seasonal_features),
            }
        )
        for month in months:
            features = flight_features[month]
            scored = drift.sample_rows(features, drift.MONTH_SCORE_ROWS, seed=0)
            scores = model.predict(scored[list(FEATURE_COLUMNS)])[OUTPUT_COLUMN].to_numpy()
            report = drift.measure_drift(reference, features, scores)
            table = report.to_frame(thresholds, config.seasonal_features)
            verdict = drift.judge(table)
            prediction_psi = report.prediction.psi if report.prediction else float("nan")
            mlflow.log_metrics(
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
            mlflow.set_tag(f"drift_outcome/{month}", verdict.outcome)
            mlflow.log_table(table, artifact_file=f"drift/{month}/feature_drift.json")
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
            **run.metadata(),
        },
    )


DRIFT_CHECK = dg.AssetCheckKey(dg.AssetKey("feature_drift"), "drift_within_thresholds")
TRAINED_MODEL = dg.AssetKey("trained_model")
HISTORY_PAGE = 100
ENDED_WITHOUT_RESULT = {
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
    dg.DagsterRunStatus.CANCELING,
}


@dataclass(frozen=True)
class DriftCursor:
    """How far the sensor has read the drift check's executions.

    Attributes:
        after: Every execution with an id up to this one has ended and been looked at.
        handled: Failed executions above ``after`` already acted on (an earlier execution
            still running keeps ``after`` below them).
    """

    after: int = 0
    handled: tuple[int, ...] = ()

    def encode(self) -> str:
        """The cursor as the sensor stores it."""
        return json.dumps({"after": self.after, "handled": list(self.handled)})

    @classmethod
    def decode(cls, text: str | None) -> "DriftCursor":
        """The cursor :meth:`encode` stored (the start when there is none)."""
        if not text:
            return cls()
        data = json.loads(text)
        return cls(after=int(data["after"]), handled=tuple(int(i) for i in data["handled"]))


def _executions_after(
    instance: dg.DagsterInstance, after: int
) -> list["AssetCheckExecutionRecord"]:
    """The drift check's executions with an id above ``after``, oldest first."""
    found: list[AssetCheckExecutionRecord] = []
    before: int | None = None
    while True:
        page = instance.event_log_storage.get_asset_check_execution_history(
            DRIFT_CHECK, limit=HISTORY_PAGE, cursor=before
        )
        found += [record for record in page if record.id > after]
        if len(page) < HISTORY_PAGE or page[-1].id <= after:
            return sorted(found, key=lambda record: record.id)
        before = page[-1].id


def _ended(instance: dg.DagsterInstance, record: "AssetCheckExecutionRecord") -> bool:
    """Whether the execution has its result, or never will (its run ended without it)."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus,
    )

    if record.status != AssetCheckExecutionRecordStatus.PLANNED:
        return True
    run = instance.get_run_by_id(record.run_id)
    return run is None or run.is_finished


def _failed_with_error(record: "AssetCheckExecutionRecord") -> bool:
    evaluation = record.evaluation
    return (
        isinstance(evaluation, dg.AssetCheckEvaluation)
        and not evaluation.passed
        and evaluation.severity == dg.AssetCheckSeverity.ERROR
    )


def _retraining_since(instance: dg.DagsterInstance, since: float) -> dg.DagsterRun | None:
    """A run created after ``since`` that trains the model and did not fail, if any.

    Such a run reads the drifted month's features (built before its drift was measured), so
    it is the retraining the failure asks for: the automation sensor's, the weekly
    schedule's, or a person's.
    """
    runs = instance.get_runs(
        filters=dg.RunsFilter(created_after=datetime.fromtimestamp(since, UTC)), limit=100
    )
    for run in runs:
        trains = run.job_name == retrain_job.name or TRAINED_MODEL in (run.asset_selection or ())
        if trains and run.status not in ENDED_WITHOUT_RESULT:
            return run
    return None


@dg.sensor(
    name="drift_retrain_sensor",
    job=retrain_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Runs retrain_job (train, evaluate, gated registration) once after the drift "
    "check fails with severity ERROR on a month, unless the model was retrained since.",
)
def drift_retrain_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Request one retrain_job run for the drift-check failures since the last evaluation."""
    cursor = DriftCursor.decode(context.cursor)
    records = _executions_after(context.instance, cursor.after)
    failures = [r for r in records if _failed_with_error(r) and r.id not in cursor.handled]
    after = cursor.after
    for record in records:
        if not _ended(context.instance, record):
            break  # look at it again next time; later ones are remembered as handled
        after = record.id
    handled = tuple(sorted(i for i in {*cursor.handled, *(r.id for r in failures)} if i > after))
    next_cursor = DriftCursor(after=after, handled=handled).encode()
    if not failures:
        return dg.SensorResult(
            cursor=next_cursor,
            skip_reason=f"no new failed drift check ({len(records)} new execution(s) read)",
        )
    months = sorted({r.partition or "?" for r in failures})
    latest = max(r.event.timestamp if r.event else r.create_timestamp for r in failures)
    retraining = _retraining_since(context.instance, latest)
    if retraining is not None:
        return dg.SensorResult(
            cursor=next_cursor,
            skip_reason=f"drift failed on {', '.join(months)}, but run {retraining.run_id} "
            f"({retraining.job_name}, {retraining.status.value}) retrains the model since",
        )
    context.log.info(f"drift check failed on {', '.join(months)}: requesting {retrain_job.name}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                job_name=retrain_job.name,
                run_key="drift:" + ",".join(str(r.id) for r in failures),
                tags={
                    TRIGGER_TAG: "drift_retrain_sensor",
                    DRIFTED_MONTHS_TAG: ",".join(months),
                    SEARCH_TAG: "full",  # drifted data: the last search's choice may not hold
                },
            )
        ],
        cursor=next_cursor,
    )
