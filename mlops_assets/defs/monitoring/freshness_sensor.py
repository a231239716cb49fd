"""The freshness sensor: tells the webhooks when the champion or the predictions go stale."""

import json

import dagster as dg

from mlops_assets.defs.shared.keys import FLIGHT_DELAY_PREDICTIONS, REGISTERED_MODEL
from mlops_assets.resources import Notifier
from mlops_assets.runtime import settings

WATCHED = (REGISTERED_MODEL, FLIGHT_DELAY_PREDICTIONS)
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
