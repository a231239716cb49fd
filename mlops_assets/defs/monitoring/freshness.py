"""Freshness SLAs: how old the champion and the predictions may get, and who hears about it.

Dagster's freshness daemon (part of ``dagster dev`` and ``dagster-daemon run``; the shipped
``dagster.yaml`` enables it) evaluates each policy every 30 s and records the asset's state,
PASS, WARN or FAIL, which the UI shows on the asset. The policies are on the asset, not on
each partition (Dagster 1.13 evaluates the asset's latest materialization): the nightly
scoring keeps ``flight_delay_predictions`` under a day old, so 36 h means a night was missed.
The windows are edited here, in one place.
"""

import json
from datetime import timedelta

import dagster as dg

from mlops_assets.resources import Notifier
from mlops_assets.runtime import settings

PREDICTIONS_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=36), warn_window=timedelta(hours=26)
)
"""Scored nightly at 02:00 UTC: a warning after one missed night, a failure at 36 h."""

CHAMPION_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=8), warn_window=timedelta(days=7, hours=6)
)
"""Retrained (and gated) every Monday: a failure when a week's retraining did not happen."""

WATCHED = (dg.AssetKey("registered_model"), dg.AssetKey("flight_delay_predictions"))
ALERTED = ("WARN", "FAIL")


@dg.sensor(
    name="freshness_violation_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Posts to the webhooks when the champion or the predictions turn WARN or FAIL "
    "on their freshness policy, and when they recover.",
)
def freshness_violation_sensor(
    context: dg.SensorEvaluationContext, notifier: Notifier
) -> dg.SkipReason:
    """Post each change of freshness state of the champion and the predictions."""
    told: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    records = context.instance.get_freshness_state_records(list(WATCHED))
    changes = []
    for key in WATCHED:
        record = records.get(key)
        if record is None:
            continue
        name, state = key.to_user_string(), record.freshness_state.value
        previous = told.get(name, "PASS")
        if state != previous and (state in ALERTED or previous in ALERTED):
            changes.append(f"{name}: {previous} -> {state}")
            notifier.send(
                title=f"Freshness {state}: {name}"
                if state in ALERTED
                else f"Freshness recovered: {name}",
                text=f"{name} went from {previous} to {state} at "
                f"{record.updated_at:%Y-%m-%d %H:%M} UTC.",
                link=f"{settings.dagster_ui_url().rstrip('/')}/assets/{name}",
                log=context.log,
            )
        told[name] = state
    context.update_cursor(json.dumps(told, sort_keys=True))
    return dg.SkipReason(
        "; ".join(changes) if changes else "no change of freshness state to report"
    )
