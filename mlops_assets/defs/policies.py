"""Retry policies and the automation condition shared by the assets.

Steps that read files or talk to MLflow retry transient faults with exponential backoff and
jitter (so parallel runs that failed together do not retry in lockstep). Errors in the data
itself are raised as ``dg.Failure(allow_retries=False)``: retrying cannot fix a bad file.
"""

import dagster as dg

FILE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=1, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Landing-zone reads and lake writes: Dagster waits (2**n - 1) * delay +- delay, i.e.
about 1 s, 3 s and 7 s (each +- 1 s)."""

MLFLOW_RETRY = dg.RetryPolicy(
    max_retries=4, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Steps that log to or register in MLflow: about 2 s, 6 s, 14 s and 30 s (each +- 2 s)."""

REFRESH_WHEN_INPUTS_CHANGE = dg.AutomationCondition.eager()
"""Refresh after any upstream asset (or partition) updates, but never while one of them is
missing or still being computed by a run or a backfill. The model assets depend on every
month's features, so a 12-month backfill (or 12 months landing at once) leads to one
retraining when the last month is in, not one per month. On ``flight_features`` it rebuilds
every month after ``raw_planes`` changes."""
