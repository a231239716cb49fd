"""Retry policies and the automation condition shared by the assets.

Steps that read files or talk to MLflow retry transient faults with exponential backoff and
jitter (so parallel runs that failed together do not retry in lockstep). Errors in the data
itself are raised as ``dg.Failure(allow_retries=False)``: retrying cannot fix a bad file.
"""

import dagster as dg

from mlops_assets.resources import MlflowTracking
from mlops_assets.runtime import settings

FILE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=1, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""Landing-zone reads and lake writes: Dagster waits (2**n - 1) * delay +- delay, i.e.
about 1 s, 3 s and 7 s (each +- 1 s)."""


def mlflow_retry(delay: float) -> dg.RetryPolicy:
    """Retries of a step that logs to or registers in MLflow, the first after ``delay`` s.

    Four retries, waiting (2**n - 1) * delay +- delay before the n-th.
    """
    return dg.RetryPolicy(
        max_retries=4, delay=delay, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    )


MLFLOW_RETRY = mlflow_retry(settings.mlflow_retry_delay())
"""Steps that log to or register in MLflow: by default (``MLOPS_MLFLOW_RETRY_DELAY_S`` unset)
about 2 s, 6 s, 14 s and 30 s (each +- 2 s)."""

REGISTRY_POOL = "mlflow_registry"
"""Concurrency pool of every step that moves a registry alias (``registered_model``,
``roll_back_champion``). ``deploy/local/dagster.yaml`` limits it to one step at a time across
all runs of the instance, so no two runs read ``@champion``, decide and move it over each
other. Dagster's slot claim is not atomic on SQLite storage, so the steps also hold
``MlflowTracking.registry_lock`` while they write. Both are held per attempt: between the
retries of a step, another run may take them (each attempt checks ``@champion`` again before
it moves anything)."""


TRAINING_POOL = "training"
"""Concurrency pool of the steps that fit models (``trained_model``,
``reproduce_model_version``): each uses every core of the machine it runs on, so the shipped
instances run one at a time (``default_limit: 1``), and a Celery worker is never asked for two
searches at once."""


def longest_retry_wait(policy: dg.RetryPolicy) -> float:
    """Most seconds Dagster waits in total between the attempts of a step under ``policy``."""
    delay = policy.delay or 0.0
    total = 0.0
    for attempt in range(1, policy.max_retries + 1):
        if policy.backoff == dg.Backoff.EXPONENTIAL:
            wait = (2**attempt - 1) * delay
        elif policy.backoff == dg.Backoff.LINEAR:
            wait = attempt * delay
        else:
            wait = delay
        total += wait + (delay if policy.jitter == dg.Jitter.PLUS_MINUS else 0.0)
    return total


def mlflow_outage_wait(
    tracking: MlflowTracking, hung: bool = False, policy: dg.RetryPolicy = MLFLOW_RETRY
) -> float:
    """Longest an MLflow step retries through an outage before it fails, its work aside.

    Each attempt fails on its first request, after the MLflow client's own retries (and, when
    the server hangs, one more timed-out try to end the attempt's MLflow run); Dagster waits
    between the attempts. With the defaults: 5 x 3 s + 60 s = 75 s when the server is down
    (connections refused), 5 x 63 s + 60 s = 375 s when it accepts connections but never
    answers.

    Args:
        tracking: The MLflow resource, whose ``http_*`` fields cap the client's retries.
        hung: Whether the server hangs rather than refuses connections.
        policy: The steps' retry policy (the one this code location was built with).
    """
    per_attempt = tracking.request_wait_seconds(hung) + (
        tracking.http_timeout_seconds if hung else 0
    )
    return (policy.max_retries + 1) * per_attempt + longest_retry_wait(policy)


REFRESH_WHEN_INPUTS_CHANGE = dg.AutomationCondition.eager()
"""Refresh after any upstream asset (or partition) updates, but never while one of them is
missing or still being computed by a run or a backfill. The model assets depend on every
month's features, so a 12-month backfill (or 12 months landing at once) leads to one
retraining when the last month is in, not one per month. On ``flight_features`` it rebuilds a
month whose raw partitions were materialized without it (one raw asset run from the UI)."""
