"""Schedules: the weekly retraining, and the nightly scoring of the newest month."""

import dagster as dg

from mlops_assets.defs.operations.jobs import retrain_job, scoring_job
from mlops_assets.defs.shared.keys import FLIGHT_FEATURES, FULL_SEARCH, SEARCH_TAG, TRIGGER_TAG
from mlops_assets.defs.shared.lineage import latest_materialization
from mlops_assets.defs.shared.partitions import MONTH_PARTITIONS

RETRAIN_CRON = "0 3 * * 1"
"""Monday 03:00 UTC; change it here (or pause the schedule in the UI)."""
SCORING_CRON = "0 2 * * *"
"""Every day at 02:00 UTC."""

weekly_retrain_schedule = dg.ScheduleDefinition(
    name="weekly_retrain_schedule",
    job=retrain_job,
    cron_schedule=RETRAIN_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    # The weekly run searches the candidates again; a new month in between refits.
    tags={SEARCH_TAG: FULL_SEARCH, TRIGGER_TAG: "weekly_retrain_schedule"},
    description="Searches the candidates again, then retrains, evaluates and registers the "
    "model every Monday at 03:00 UTC.",
)


@dg.schedule(
    job=scoring_job,
    cron_schedule=SCORING_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Scores the newest month's flights with @champion every day at 02:00 UTC.",
)
def nightly_scoring_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """Request the predictions of the newest registered month once its features exist."""
    months = context.instance.get_dynamic_partitions(MONTH_PARTITIONS)
    if not months:
        return dg.SkipReason("no month is registered yet: nothing to score")
    newest = max(months)
    if latest_materialization(context.instance, FLIGHT_FEATURES, newest) is None:
        return dg.SkipReason(f"flight_features of {newest}, the newest month, is not built yet")
    return dg.RunRequest(partition_key=newest, tags={TRIGGER_TAG: "nightly_scoring"})
