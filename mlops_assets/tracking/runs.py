"""The MLflow runs of a Dagster run: one parent, one nested run per asset (no dagster).

The parent is the run tagged ``dagster_run_id`` with the Dagster run's id, the tag
dagster-mlflow's ``mlflow_tracking`` resource sets and searches for, so either finds the
parent the other made. Each function takes the ``MlflowClient`` and experiment to work on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

# dagster-mlflow's tag for "the MLflow run of this Dagster run".
DAGSTER_RUN_TAG = "dagster_run_id"
PARENT_RUN_TAG = "mlflow.parentRunId"
ASSET_KEY_TAG = "dagster.asset_key"
PARTITION_KEY_TAG = "dagster.partition_key"
FAILURE_TAG = "dagster.failure"
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
# MLflow's limit on a tag value.
TAG_CHARS = 5000


def experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of the experiment ``name``, created (at ``artifact_location``) if it is missing.

    Processes may race to create it: the loser of the race finds the winner's.
    """
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=artifact_location))
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise RuntimeError(f"experiment {name!r} was created by another process, then deleted")
    return str(experiment.experiment_id)


def parent_runs(client: MlflowClient, experiment_id: str, dagster_run_id: str) -> list[Run]:
    """The runs tagged with ``dagster_run_id``, the earliest first (ties by run id)."""
    runs = client.search_runs(
        [experiment_id], filter_string=f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'"
    )
    return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[Run]:
    """The runs nested under ``parent_run_id``."""
    return client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'"
    )


def elect_parent(
    client: MlflowClient,
    experiment_id: str,
    dagster_run_id: str,
    run_name: str,
    tags: dict[str, str],
) -> str:
    """The id of the Dagster run's parent MLflow run, created if there is none yet.

    Step processes may race to create it: each creator then elects the earliest run with the
    tag and deletes its own if it lost, so all of them converge on one parent. The parent is
    (again) RUNNING on return: a re-executed step reopens it.

    Args:
        client: The client of the tracking store.
        experiment_id: The experiment that holds the runs.
        dagster_run_id: The Dagster run's id (the value of the ``dagster_run_id`` tag).
        run_name: The name of the parent, if this call creates it.
        tags: Its tags, if this call creates it (``dagster_run_id`` is added).

    Returns:
        The parent's run id.
    """
    existing = parent_runs(client, experiment_id, dagster_run_id)
    if existing:
        parent = existing[0]
    else:
        created = client.create_run(
            experiment_id, run_name=run_name, tags={**tags, DAGSTER_RUN_TAG: dagster_run_id}
        )
        parent = parent_runs(client, experiment_id, dagster_run_id)[0]
        if parent.info.run_id != created.info.run_id:
            client.delete_run(created.info.run_id)
    if parent.info.status != RUNNING:
        client.update_run(parent.info.run_id, status=RUNNING)
    return parent.info.run_id


def finish_parent(client: MlflowClient, experiment_id: str, parent_run_id: str) -> str | None:
    """End the parent when none of its nested runs is still running.

    Every nested run ends itself before calling this, so the last one to end always sees all
    of its siblings ended. The parent ends FAILED if the latest attempt of any asset
    (partition) failed or was killed, else FINISHED: an attempt that failed and was retried
    with success does not fail the parent. Its end time is its last child's.

    Returns:
        The status the parent was given, or None while a nested run is still running.
    """
    children = child_runs(client, experiment_id, parent_run_id)
    if any(child.info.status == RUNNING for child in children):
        return None
    latest: dict[tuple[str, str], Run] = {}
    for child in sorted(children, key=lambda run: run.info.start_time or 0):
        tags = child.data.tags
        latest[(tags.get(ASSET_KEY_TAG, ""), tags.get(PARTITION_KEY_TAG, ""))] = child
    failed = any(child.info.status in (FAILED, KILLED) for child in latest.values())
    end_time = max((child.info.end_time or 0 for child in children), default=None)
    status = FAILED if failed else FINISHED
    client.set_terminated(parent_run_id, status=status, end_time=end_time)
    return status


def close_failed_run(
    client: MlflowClient, experiment_id: str, dagster_run_id: str, reason: str
) -> list[str]:
    """Mark the MLflow runs of a failed Dagster run FAILED; return the runs it changed.

    The nested runs close themselves when their asset body fails, but not when a step fails
    outside it (writing its output) or its process is killed: this closes those still
    RUNNING, and the parent whatever its status. Runs already ended FAILED or KILLED, and
    nested runs that ended FINISHED, are left as they are. ``reason`` goes in the
    ``dagster.failure`` tag of each run changed.
    """
    changed = []
    for parent in parent_runs(client, experiment_id, dagster_run_id):
        children = child_runs(client, experiment_id, parent.info.run_id)
        for run in [*children, parent]:
            if run.info.status in (FAILED, KILLED):
                continue
            if run is parent or run.info.status == RUNNING:
                client.set_tag(run.info.run_id, FAILURE_TAG, reason[:TAG_CHARS])
                client.set_terminated(run.info.run_id, status=FAILED)
                changed.append(run.info.run_id)
    return changed


def close_earlier_attempts(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    asset_key: str,
    partition_key: str | None,
) -> list[str]:
    """End FAILED the nested runs of this asset (partition) that earlier attempts left open.

    Returns:
        The runs it ended.
    """
    left_open = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}' "
        f"and tags.`{ASSET_KEY_TAG}` = '{asset_key}' "
        f"and attributes.status = '{RUNNING}'",
    )
    ended = []
    for run in left_open:
        if run.data.tags.get(PARTITION_KEY_TAG) == partition_key:
            client.set_tag(
                run.info.run_id,
                FAILURE_TAG,
                "MLflow was unreachable when this attempt failed; ended by the next attempt",
            )
            client.set_terminated(run.info.run_id, status=FAILED)
            ended.append(run.info.run_id)
    return ended
