"""The month partitions: one per month whose files have landed, registered by the sensor."""

import dagster as dg

from mlops_assets import landing

MONTH_PARTITIONS = "month"
MONTHS = dg.DynamicPartitionsDefinition(name=MONTH_PARTITIONS)
"""Keys are ``YYYY-MM``. Dynamic rather than a monthly time window: a partition exists
exactly when its month has landed, so a backfill of "all" never asks for a month the feed
has not delivered, and the model trains on every partition there is."""


def month_of(context: dg.AssetExecutionContext) -> str:
    """The month a partitioned step works on, checked to be ``YYYY-MM``.

    Raises:
        dg.Failure: When the partition key is not a month (e.g. added by hand in the UI).
    """
    key = context.partition_key
    try:
        landing.parse_month(key)
    except landing.LandingError as error:
        raise dg.Failure(description=f"partition {key!r}: {error}", allow_retries=False) from error
    return key
