"""Materialize everything that has landed, from the command line, without the daemon.

What ``make materialize`` and the benchmarks run: register every landed month as a partition,
then the runs a backfill of everything launches (the months' raw data, planes and features
in batches of ``MONTHS_PER_RUN``, as the assets' ``BackfillPolicy`` shapes the UI's backfills
and the sensor's catch-up; the model; the predictions, batched the same way), executed here:
the month batches in worker processes, the rest (the scoring too) in this one.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import yaml

from mlops_assets.defs.shared.keys import FULL_SEARCH, SEARCH_TAG, TRIGGER_TAG
from mlops_assets.defs.shared.partitions import (
    MONTH_PARTITIONS,
    Batch,
    batch_label,
    batch_target,
    month_ranges,
)
from mlops_assets.landing import scan
from mlops_assets.runtime import gc_policy

if TYPE_CHECKING:
    from mlops_assets.runtime.dagster_compat import InstanceRef


class RebuildError(Exception):
    """A run of the rebuild failed; the message names the job, the month and the step."""


def model_run_config(defs: dg.Definitions, path: Path) -> dict[str, Any]:
    """The run config of the rebuild's model run (``retrain_job``), read from a YAML file.

    It is checked against the job before anything runs.

    Raises:
        RebuildError: When the file is missing, is not YAML, or does not fit the job; the
            message names the file and the problem.
    """
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as error:
        raise RebuildError(f"{path}: cannot read the run config ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise RebuildError(f"{path}: not YAML: {error}") from error
    if not isinstance(loaded, dict):
        raise RebuildError(f"{path}: a run config is a mapping (ops:, resources:), not {loaded!r}")
    try:
        dg.validate_run_config(defs.resolve_job_def("retrain_job"), loaded)
    except dg.DagsterInvalidConfigError as error:
        problems = "; ".join(e.message for e in error.errors)
        raise RebuildError(f"{path}: not a run config of retrain_job: {problems}") from error
    return loaded


def register_months(instance: dg.DagsterInstance, months: Sequence[str]) -> list[str]:
    """Add the month partitions that do not exist yet; return the ones added."""
    existing = set(instance.get_dynamic_partitions(MONTH_PARTITIONS))
    added = [month for month in months if month not in existing]
    if added:
        instance.add_dynamic_partitions(MONTH_PARTITIONS, added)
    return added


def batches(instance: dg.DagsterInstance, months: Sequence[str]) -> list[Batch]:
    """``months`` cut into the runs a backfill launches for them (``MONTHS_PER_RUN`` each)."""
    return month_ranges(list(months), list(instance.get_dynamic_partitions(MONTH_PARTITIONS)))


INGESTED = ("raw_flights", "raw_weather", "raw_planes", "flight_features")
"""What the rebuild's month runs materialize: ``month_job`` without ``feature_drift``, which
the scoring runs measure against the champion the rebuild ends with, as a backfill of
everything runs it with the predictions (measuring it in the month runs too, against the
champion being replaced, cost a warm rebuild about 18 s)."""


def _execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    batch: Batch | None = None,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    selection: Sequence[str] | None = None,
) -> str:
    partition_key, batch_tags = batch_target(batch) if batch else (None, {})
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        asset_selection=None if selection is None else [dg.AssetKey(key) for key in selection],
        run_config=run_config or {},
        tags={**(tags or {}), **batch_tags},
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
        where = "" if batch is None else f" for {batch_label(*batch)}"
        raise RebuildError(f"{job_name}{where} failed (run {run_id}): {'; '.join(failures)}")
    return run_id


def _batch_in_worker(
    instance_ref: InstanceRef, job_name: str, batch: Batch, selection: Sequence[str] | None
) -> str:
    """Run a job on a batch of months in a worker process (spawned: it imports the code)."""
    from mlops_assets.definitions import defs

    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return _execute(defs, instance, job_name, batch, selection=selection)


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


def _run_batches(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job_name: str,
    runs: list[Batch],
    workers: int,
    selection: Sequence[str] | None = None,
) -> list[str]:
    """Run ``job_name`` (on ``selection``) on every batch; the run ids, in batch order.

    One batch after the other in this process, or ``workers`` at a time in worker processes.
    """
    if workers <= 1 or len(runs) <= 1:
        return [_execute(defs, instance, job_name, batch, selection=selection) for batch in runs]
    n = len(runs)
    ref = instance.get_ref()
    with _worker_pool(min(workers, n)) as pool:
        return list(pool.map(_batch_in_worker, [ref] * n, [job_name] * n, runs, [selection] * n))


def ingest(
    defs: dg.Definitions, instance: dg.DagsterInstance, root: Path, workers: int = 1
) -> list[str]:
    """Materialize every complete month's data (raw tables and features), in batches; the run ids.

    Args:
        defs: The code location (``mlops_assets.definitions.defs``; workers import it).
        instance: The Dagster instance the runs are recorded in.
        root: The landing zone.
        workers: Batches run this many at a time, each in its own process, as the run queue
            runs them under the daemon; 1 runs them one after the other in this process.

    Raises:
        RebuildError: When no month has landed, or a run fails.
    """
    months = scan.complete_months(root)
    if not months:
        raise RebuildError(f"no complete month in {root}; run `mlops-assets seed` first")
    register_months(instance, months)
    runs = batches(instance, months)
    return _run_batches(defs, instance, "month_job", runs, workers, INGESTED)


def score(defs: dg.Definitions, instance: dg.DagsterInstance, workers: int = 1) -> list[str]:
    """Score every registered month with @champion (``scoring_job``, in batches).

    ``workers`` as for :func:`ingest`; :func:`rebuild` scores in its own process.

    Returns:
        The run ids; none when no version is @champion (the gate has never passed).
    """
    from mlops_assets.defs.model.champion import has_recorded_champion

    if not has_recorded_champion(instance):
        return []
    months = list(instance.get_dynamic_partitions(MONTH_PARTITIONS))
    return _run_batches(defs, instance, "scoring_job", batches(instance, months), workers)


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
    rebuild_tags = {SEARCH_TAG: FULL_SEARCH, TRIGGER_TAG: "mlops-assets materialize"}
    runs.append(
        _execute(defs, instance, "retrain_job", run_config=model_run_config, tags=rebuild_tags)
    )
    # The scoring runs here, one batch after the other: this process has loaded the model's
    # libraries to train, while each worker would spend about 4 s importing them (MLflow,
    # scikit-learn, SciPy) to save about 2 s of predicting (benchmarks/bench_pipeline.py:
    # the two batches took 17 s in two new workers, 8 s here).
    return runs + score(defs, instance)
