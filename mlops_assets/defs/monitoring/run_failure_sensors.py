"""Sensors that watch runs: a failed run's MLflow side is closed, and people are told."""

import dagster as dg

from mlops_assets.defs.shared.partitions import batch_label
from mlops_assets.resources import MlflowTracking, Notifier
from mlops_assets.runtime import settings

ERROR_CHARS = 300


@dg.run_failure_sensor(
    name="mlflow_run_failure_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks the MLflow runs of a failed Dagster run FAILED, whatever step failed how.",
)
def mlflow_run_failure_sensor(
    context: dg.RunFailureSensorContext, mlflow_tracking: MlflowTracking
) -> None:
    """Marks the MLflow runs of a failed Dagster run FAILED, whatever step failed how."""
    reason = context.failure_event.message or "the Dagster run failed"
    changed = mlflow_tracking.close_failed_run(context.dagster_run.run_id, reason)
    context.log.info(f"MLflow runs marked FAILED: {changed or 'none left open'}")


@dg.run_failure_sensor(
    name="notify_run_failure_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts a failed run (job, failed steps, error, link) to the Slack/Discord "
    "webhooks; only logs it when none is configured.",
)
def notify_run_failure_sensor(context: dg.RunFailureSensorContext, notifier: Notifier) -> None:
    """Post the job, the failed steps, a short error and a link to the run."""
    run = context.dagster_run
    failures = context.get_step_failure_events()
    steps = [event.step_key for event in failures if event.step_key]
    error = next(
        (
            event.step_failure_data.error.message.strip()
            for event in failures
            if event.step_failure_data.error
        ),
        context.failure_event.message or "the run failed",
    )
    first, last = (run.tags.get(f"dagster/asset_partition_range_{end}") for end in ("start", "end"))
    partition = run.tags.get("dagster/partition") or (first and last and batch_label(first, last))
    notifier.send(
        title=f"Dagster run failed: {run.job_name}" + (f" [{partition}]" if partition else ""),
        text=f"Failed step(s): {', '.join(steps) or 'none (the run itself)'}\n"
        f"{error.splitlines()[0][:ERROR_CHARS] if error else ''}",
        link=f"{settings.dagster_ui_url().rstrip('/')}/runs/{run.run_id}",
        log=context.log,
    )
