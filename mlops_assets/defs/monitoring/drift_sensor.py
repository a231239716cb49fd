"""The drift sensor: one retraining after the drift check fails, and the cursor it keeps."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.defs.operations.jobs import retrain_job
from mlops_assets.defs.shared.keys import (
    DRIFT_CHECK,
    DRIFTED_MONTHS_TAG,
    FULL_SEARCH,
    SEARCH_TAG,
    TRAINED_MODEL,
    TRIGGER_TAG,
)
from mlops_assets.runtime.dagster_compat import check_executions_after, execution_ended

if TYPE_CHECKING:
    from mlops_assets.runtime.dagster_compat import AssetCheckExecutionRecord

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
    records = check_executions_after(context.instance, DRIFT_CHECK, cursor.after)
    failures = [r for r in records if _failed_with_error(r) and r.id not in cursor.handled]
    after = cursor.after
    for record in records:
        if not execution_ended(context.instance, record):
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
                    SEARCH_TAG: FULL_SEARCH,  # drifted data: the last search's choice may not hold
                },
            )
        ],
        cursor=next_cursor,
    )
