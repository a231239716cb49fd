"""Schedules: the weekly retraining on the latest data, new files or not."""

import dagster as dg

from mlops_assets.defs.jobs import retrain_job

RETRAIN_CRON = "0 3 * * 1"
"""Monday 03:00 UTC; change it here (or pause the schedule in the UI)."""

weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain_schedule",
    job=retrain_job,
    cron_schedule=RETRAIN_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrains, evaluates and registers the model every Monday at 03:00 UTC.",
)
