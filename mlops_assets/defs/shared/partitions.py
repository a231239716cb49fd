"""The month partitions: one per month whose files have landed, registered by the sensor.

Every month-partitioned asset works on a batch of months per run: a backfill of the year,
the sensor catching up on many landed months and ``mlops-assets materialize`` each run
:data:`MONTHS_PER_RUN` months at a time (Dagster's ``BackfillPolicy.multi_run``), and a
single month (a new landing, a rerun from the UI) is a batch of one.
"""

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg

from mlops_assets.defs.shared.metadata import OWNERS
from mlops_assets.landing import layout
from mlops_assets.runtime import settings

MONTH_PARTITIONS = "month"
MONTHS = dg.DynamicPartitionsDefinition(name=MONTH_PARTITIONS)
"""Keys are ``YYYY-MM``. Dynamic rather than a monthly time window: a partition exists
exactly when its month has landed, so a backfill of "all" never asks for a month the feed
has not delivered, and the model trains on every partition there is. Keys are ordered as
they were registered (chronologically, since the sensor and the command register them
sorted), and a run's range spans the keys between its first and last month in that order."""

MONTHS_PER_RUN = settings.months_per_run()
"""Months one run of a month-partitioned asset works on, at most: 6 unless
``MLOPS_MONTHS_PER_RUN`` says otherwise (docs/pipeline.md, *Partitions*, says why six)."""

MONTH_BATCHES = dg.BackfillPolicy.multi_run(max_partitions_per_run=MONTHS_PER_RUN)
"""The backfill policy of every month-partitioned asset: the UI's backfills and the
declarative automation launch one run per batch of :data:`MONTHS_PER_RUN` months."""


def _checked(key: str) -> str:
    try:
        layout.parse_month(key)
    except layout.LandingError as error:
        raise dg.Failure(description=f"partition {key!r}: {error}", allow_retries=False) from error
    return key


def months_of(context: dg.AssetExecutionContext) -> list[str]:
    """The months a partitioned step works on (its run's range), each checked to be ``YYYY-MM``.

    Raises:
        dg.Failure: When a partition key is not a month (e.g. added by hand in the UI).
    """
    return [_checked(key) for key in context.partition_keys]


def month_step(month: str) -> int:
    """A month as an MLflow metric step (``2013-04`` -> ``201304``).

    A batch's metrics are one series per metric, plotted by month.
    """
    return int(month.replace("-", ""))


Batch = tuple[str, str]
"""A run's partition range: its first and last month."""


def range_tags(batch: Batch) -> dict[str, str]:
    """The tags that make a run of a partitioned job work on ``batch`` (a backfill's own)."""
    from mlops_assets.runtime.dagster_compat import partition_range_tags

    return partition_range_tags(*batch)


def batch_label(first: str, last: str) -> str:
    """A batch as runs, MLflow runs and messages name it: ``2013-01...2013-06`` or ``2013-03``."""
    return first if first == last else f"{first}...{last}"


def batch_target(batch: Batch) -> tuple[str | None, dict[str, str]]:
    """How a run targets ``batch``: its partition key for one month, else its range tags.

    A batch of one month is a run of that partition, as a backfill launches it.
    """
    if batch[0] == batch[1]:
        return batch[0], {}
    return None, range_tags(batch)


def month_ranges(months: list[str], order: list[str]) -> list[Batch]:
    """``months`` as runs' partition ranges, at most :data:`MONTHS_PER_RUN` months each.

    A range holds months consecutive in ``order``.

    Args:
        months: The months to run (a subset of ``order``).
        order: Every partition key, in the partitions definition's order.

    Returns:
        ``(first, last)`` of each range, in ``order``.
    """
    wanted = set(months)
    ranges: list[list[str]] = []
    previous_index = -2
    for index, key in enumerate(order):
        if key not in wanted:
            continue
        if index != previous_index + 1 or len(ranges[-1]) == MONTHS_PER_RUN:
            ranges.append([])
        ranges[-1].append(key)
        previous_index = index
    return [(batch[0], batch[-1]) for batch in ranges]


def month_asset(
    name: str,
    *,
    group_name: str,
    kinds: set[str],
    code_version: str,
    retry_policy: dg.RetryPolicy,
    check_specs: Sequence[dg.AssetCheckSpec],
    dagster_type: dg.DagsterType | None = None,
    deps: Sequence[str] = (),
    automation_condition: dg.AutomationCondition | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """Declare a month-partitioned asset whose step reports its checks month by month.

    A one-output ``multi_asset`` rather than an ``asset`` for one reason: its check outputs
    are optional (``can_subset``), so a step over a batch of months reports its checks as
    one ``AssetCheckEvaluation`` per month
    (:func:`~mlops_assets.defs.shared.checks.month_evaluations`) instead of one result for
    the whole batch. The step yields its output as ``name``: a
    mapping of month to frame, which the IO manager stores one file per month (or nothing,
    which stores nothing). The function's docstring is the asset's description; ``deps``
    are upstream assets it reads by other means than an input.
    """

    def decorate(function: Callable[..., Any]) -> dg.AssetsDefinition:
        return dg.multi_asset(
            name=name,
            outs={
                name: dg.AssetOut(
                    group_name=group_name,
                    kinds=kinds,
                    owners=OWNERS,
                    code_version=code_version,
                    is_required=False,
                    automation_condition=automation_condition,
                    description=function.__doc__,
                    dagster_type=dagster_type if dagster_type is not None else dg.Any,
                )
            },
            deps=list(deps),
            partitions_def=MONTHS,
            backfill_policy=MONTH_BATCHES,
            retry_policy=retry_policy,
            check_specs=check_specs,
            can_subset=True,
        )(function)

    return decorate
