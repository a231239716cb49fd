"""Materialize everything that has landed, from the command line, without the daemon.

What ``make materialize`` and the benchmarks run: register every landed month as a partition,
then the runs the landing-zone sensor and the automation would launch (the planes, one run per
month, the model), executed here: the months in worker processes, the rest in this one.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from mlops_assets import gc_policy, landing_scan
from mlops_assets.defs.metadata import SEARCH_TAG, TRIGGER_TAG
from mlops_assets.defs.partitions import MONTH_PARTITIONS

if TYPE_CHECKING:
    from dagster._core.instance.ref import InstanceRef


class RebuildError(Exception):
    """A run of the rebuild failed; the message names the job, the month and the step."""


def register_months(instance: dg.DagsterInstance, months: Sequence[str]) -> list[str]:
    """Add the month partitions that do not exist yet; return the ones added."""
    existing = set(instance.get_dynamic_partitions(MONTH_PARTITIONS))
    added = [month for month in months if month not in existing]
    if added:
        instance.add_dynamic_partitions(MONTH_PARTITIONS, added)
    return added


def _execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    partition_key: str | None = None,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        run_config=run_config or {},
        tags=tags,
        raise_on_error=False,
    )
    run_id, success = result.run_id, result.success
    failures = [
        f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
        for event in result.get_step_failure_events()
        if event.step_failure_data.error
    ]
    # The result holds every output of the run (a month's frames). This process, or this
    # worker of the pool, runs the next month next: drop them and start it afresh.
    del result
    gc_policy.release_memory()
    if not success:
        where = f" for {partition_key}" if partition_key else ""
        raise RebuildError(f"{job_name}{where} failed (run {run_id}): {'; '.join(failures)}")
    return run_id


def _load_code_location() -> None:
    import mlops_assets.definitions  # noqa: F401


def _partition_in_worker(instance_ref: InstanceRef, job_name: str, month: str) -> str:
    """Run a job for one month in a worker process (spawned: it imports the code location)."""
    from mlops_assets.definitions import defs

    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return _execute(defs, instance, job_name, month)


@contextmanager
def _worker_pool(size: int) -> Iterator[ProcessPoolExecutor]:
    """Spawned worker processes, every one of them ended and reaped when the block ends.

    The pool's shutdown joins its workers. Its locks also start multiprocessing's resource
    tracker, a process that would outlive this one: it exits only when this process has, and
    then, its parent gone, stays a zombie wherever nothing reaps orphans (a container's
    init). The tracker is stopped and reaped here, once the pool and its locks are gone;
    ``_stop`` is private, and the only way to do that.
    """
    from multiprocessing import resource_tracker

    try:
        with ProcessPoolExecutor(
            max_workers=size, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            yield pool
    finally:
        resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


def _map_months(
    pool: ProcessPoolExecutor, ref: InstanceRef, job_name: str, months: list[str]
) -> list[str]:
    """Run ``job_name`` for every month in the pool's workers; the run ids, in month order."""
    n = len(months)
    return list(pool.map(_partition_in_worker, [ref] * n, [job_name] * n, months))


def ingest(
    defs: dg.Definitions, instance: dg.DagsterInstance, root: Path, workers: int = 1
) -> list[str]:
    """Materialize the planes, then every complete month (one run each); return the run ids.

    Args:
        defs: The code location (``mlops_assets.definitions.defs``; workers import it).
        instance: The Dagster instance the runs are recorded in.
        root: The landing zone.
        workers: Months run this many at a time, each in its own process, as the run queue
            runs them under the daemon; 1 runs them one after the other in this process.

    Raises:
        RebuildError: When no month has landed, or a run fails.
    """
    months = landing_scan.complete_months(root)
    if not months:
        raise RebuildError(f"no complete month in {root}; run `mlops-assets seed` first")
    register_months(instance, months)
    if workers <= 1:
        runs = [_execute(defs, instance, "planes_job")]
        return runs + [_execute(defs, instance, "month_job", month) for month in months]
    with _worker_pool(min(workers, len(months))) as pool:
        # The workers start (import the code location) while the planes run here.
        started = [pool.submit(_load_code_location) for _ in range(min(workers, len(months)))]
        runs = [_execute(defs, instance, "planes_job")]
        wait(started)
        ref = instance.get_ref()
        return runs + _map_months(pool, ref, "month_job", months)


def score(defs: dg.Definitions, instance: dg.DagsterInstance, workers: int = 1) -> list[str]:
    """Score every registered month with @champion (one ``scoring_job`` run each).

    Returns:
        The run ids; none when no version is @champion (the gate has never passed).
    """
    from mlops_assets.defs.lineage import registered_model_data_version
    from mlops_assets.defs.registry import champion_data_version

    if registered_model_data_version(instance) in (None, champion_data_version(None)):
        return []
    months = sorted(instance.get_dynamic_partitions(MONTH_PARTITIONS))
    if workers <= 1 or len(months) <= 1:
        return [_execute(defs, instance, "scoring_job", month) for month in months]
    with _worker_pool(min(workers, len(months))) as pool:
        return _map_months(pool, instance.get_ref(), "scoring_job", months)


def rebuild(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    root: Path,
    model_run_config: Mapping[str, Any] | None = None,
    workers: int = 1,
) -> list[str]:
    """:func:`ingest`, search, train, evaluate and register the model, then :func:`score`.

    Returns:
        The run ids, in that order.

    Raises:
        RebuildError: When no month has landed, or a run fails.
    """
    runs = ingest(defs, instance, root, workers)
    # A rebuild of everything searches the candidates again, as the first one did; a month
    # absorbed by the sensor and the automation only refits the last search's choice.
    rebuild_tags = {SEARCH_TAG: "full", TRIGGER_TAG: "mlops-assets materialize"}
    runs.append(
        _execute(defs, instance, "retrain_job", run_config=model_run_config, tags=rebuild_tags)
    )
    return runs + score(defs, instance, workers)
