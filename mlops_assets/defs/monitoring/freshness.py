"""Freshness SLAs: how old the champion and the predictions may get.

Dagster's freshness daemon (part of ``dagster dev`` and ``dagster-daemon run``; the shipped
``dagster.yaml`` enables it) evaluates each policy every 30 s and records the asset's state,
PASS, WARN or FAIL, which the UI shows on the asset. The policies are on the asset, not on
each partition (Dagster 1.13 evaluates the asset's latest materialization): the nightly
scoring keeps ``flight_delay_predictions`` under a day old, so 36 h means a night was missed.
The windows are edited here, in one place; ``freshness_violation_sensor``
(:mod:`~mlops_assets.defs.monitoring.freshness_sensor`) tells the webhooks.
"""

from datetime import timedelta

import dagster as dg

PREDICTIONS_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=36), warn_window=timedelta(hours=26)
)
"""Scored nightly at 02:00 UTC: a warning after one missed night, a failure at 36 h."""

CHAMPION_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=8), warn_window=timedelta(days=7, hours=6)
)
"""Retrained (and gated) every Monday: a failure when a week's retraining did not happen."""
