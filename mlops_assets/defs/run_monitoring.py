"""Sensors that watch runs: the MLflow side of a failed Dagster run is closed as FAILED."""

import dagster as dg

from mlops_assets.resources import MlflowTracking


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
