"""Retry policies and the automation condition shared by the assets.

Steps that read files or talk to MLflow retry transient faults with exponential backoff and
jitter (so parallel runs that failed together do not retry in lockstep). Errors in the data
itself are raised as ``dg.Failure(allow_retries=False)``: retrying cannot fix a bad file.
"""

import dagster as dg

FILE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=1, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Landing-zone reads and lake writes: 1 s, 2 s, 4 s (each +-50 %)."""

MLFLOW_RETRY = dg.RetryPolicy(
    max_retries=4, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Steps that log to or register in MLflow: 2 s, 4 s, 8 s, 16 s (each +-50 %)."""

RETRAIN_WHEN_INPUTS_CHANGE = dg.AutomationCondition.eager()
"""Refresh after any upstream asset (or partition) updates, but never while one of them is
missing or still being computed by a run or a backfill: a 12-month backfill of the features
therefore leads to one retraining when it is over, not twelve."""
