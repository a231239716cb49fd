"""The only door to Dagster internals (``dagster._core``): what its public API lacks in 1.13.27.

Each name below is imported from a private module because ``dagster`` does not export it;
on a Dagster upgrade, this is the one file to check. Imports stay inside the functions (or
under ``TYPE_CHECKING``) so that loading the code location pays for none of them.

- The tags that make a run work on a partition range (a backfill sets them; a rebuild's runs
  set them the same way).
- The instance's reference, which a rebuild hands to its worker processes.
- The history of an asset check's executions, which ``drift_retrain_sensor`` reads with a
  cursor (the public API gives the latest execution only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord

__all__ = [
    "AssetCheckExecutionRecord",
    "InstanceRef",
    "check_executions_after",
    "execution_ended",
    "partition_range_tags",
]

HISTORY_PAGE = 100


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """The run tags that target the partitions ``first`` to ``last`` (a backfill's own)."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def check_executions_after(
    instance: dg.DagsterInstance, check: dg.AssetCheckKey, after: int
) -> list[AssetCheckExecutionRecord]:
    """The executions of ``check`` with an id above ``after``, oldest first."""
    found: list[AssetCheckExecutionRecord] = []
    before: int | None = None
    while True:
        page = instance.event_log_storage.get_asset_check_execution_history(
            check, limit=HISTORY_PAGE, cursor=before
        )
        found += [record for record in page if record.id > after]
        if len(page) < HISTORY_PAGE or page[-1].id <= after:
            return sorted(found, key=lambda record: record.id)
        before = page[-1].id


def execution_ended(instance: dg.DagsterInstance, record: AssetCheckExecutionRecord) -> bool:
    """Whether the execution has its result, or never will (its run ended without it)."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus,
    )

    if record.status != AssetCheckExecutionRecordStatus.PLANNED:
        return True
    run = instance.get_run_by_id(record.run_id)
    return run is None or run.is_finished
