"""The parent/nested run bookkeeping, against a real MLflow SQLite store (no dagster)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from mlops_assets.tracking import runs
from mlops_assets.tracking.runs import (
    ASSET_KEY_TAG,
    DAGSTER_RUN_TAG,
    FAILURE_TAG,
    PARENT_RUN_TAG,
    PARTITION_KEY_TAG,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def client(store: str) -> MlflowClient:
    return MlflowClient(tracking_uri=store)


@pytest.fixture
def experiment(client: MlflowClient, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh experiment per test, so that no test sees another's runs."""
    return client.create_experiment(request.node.name, artifact_location=str(tmp_path))


def _active_parents(client: MlflowClient, experiment: str, dagster_run_id: str) -> list[Run]:
    return runs.parent_runs(client, experiment, dagster_run_id)


def _child(
    client: MlflowClient,
    experiment: str,
    parent: str,
    asset: str,
    status: str,
    start: int,
    partition: str | None = None,
) -> str:
    tags = {PARENT_RUN_TAG: parent, ASSET_KEY_TAG: asset}
    if partition is not None:
        tags[PARTITION_KEY_TAG] = partition
    run_id = client.create_run(experiment, start_time=start, tags=tags).info.run_id
    if status != runs.RUNNING:
        client.set_terminated(run_id, status=status, end_time=start + 10)
    return run_id


def _elect(client: MlflowClient, experiment: str, dagster_run_id: str) -> str:
    return runs.elect_parent(
        client, experiment, dagster_run_id, run_name="job-x", tags={"dagster.job": "job"}
    )


def test_the_first_step_creates_the_parent_and_the_others_find_it(
    client: MlflowClient, experiment: str
) -> None:
    first = _elect(client, experiment, "dagster-a")
    assert _elect(client, experiment, "dagster-a") == first
    parent = client.get_run(first)
    assert parent.data.tags[DAGSTER_RUN_TAG] == "dagster-a"
    assert parent.data.tags["dagster.job"] == "job"
    assert parent.info.run_name == "job-x"
    assert parent.info.status == runs.RUNNING
    # Positive control: another Dagster run gets a parent of its own.
    assert _elect(client, experiment, "dagster-b") != first
    assert len(_active_parents(client, experiment, "dagster-a")) == 1


def test_a_re_executed_step_reopens_an_ended_parent(client: MlflowClient, experiment: str) -> None:
    parent = _elect(client, experiment, "dagster-a")
    client.set_terminated(parent, status=runs.FAILED)
    assert _elect(client, experiment, "dagster-a") == parent
    assert client.get_run(parent).info.status == runs.RUNNING


class RacingClient(MlflowClient):
    """A real client whose ``create_run`` first lets a rival step elect its parent.

    The rival (another step process, here run inline) searched, found nothing and created its
    parent just before this creator, which had also found nothing, creates its own.
    """

    def __init__(self, store: str, rival: Any) -> None:
        super().__init__(tracking_uri=store)
        self.rival = rival
        self.rival_elected: str | None = None
        self.created: list[str] = []

    def create_run(self, *args: Any, **kwargs: Any) -> Run:
        if self.rival_elected is None:
            self.rival_elected = self.rival()
            time.sleep(0.01)  # the rival's run is the earlier one, by the clock
        run = super().create_run(*args, **kwargs)
        self.created.append(run.info.run_id)
        return run


def test_two_creators_racing_converge_on_the_earliest_parent(
    store: str, client: MlflowClient, experiment: str
) -> None:
    racing = RacingClient(store, lambda: _elect(client, experiment, "dagster-a"))
    elected = _elect(racing, experiment, "dagster-a")
    assert racing.rival_elected is not None
    assert elected == racing.rival_elected
    # The loser deleted its own run: one parent is left, the rival's.
    assert [r.info.run_id for r in _active_parents(client, experiment, "dagster-a")] == [elected]
    (lost,) = racing.created
    assert client.get_run(lost).info.lifecycle_stage == "deleted"
    # A later step finds the same one.
    assert _elect(client, experiment, "dagster-a") == elected


def test_the_parent_ends_only_when_no_child_is_running(
    client: MlflowClient, experiment: str
) -> None:
    parent = _elect(client, experiment, "dagster-a")
    _child(client, experiment, parent, "raw_flights", runs.FINISHED, start=1_000)
    running = _child(client, experiment, parent, "raw_weather", runs.RUNNING, start=1_001)
    assert runs.finish_parent(client, experiment, parent) is None
    assert client.get_run(parent).info.status == runs.RUNNING
    client.set_terminated(running, status=runs.FINISHED, end_time=5_000)
    assert runs.finish_parent(client, experiment, parent) == runs.FINISHED
    ended = client.get_run(parent)
    assert (ended.info.status, ended.info.end_time) == (runs.FINISHED, 5_000)


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        # (asset, partition, status) in the order they started
        ([("a", "2013-01", runs.FAILED), ("a", "2013-01", runs.FINISHED)], runs.FINISHED),
        ([("a", "2013-01", runs.FINISHED), ("a", "2013-01", runs.FAILED)], runs.FAILED),
        ([("a", "2013-01", runs.FINISHED), ("b", "2013-01", runs.KILLED)], runs.FAILED),
        ([("a", "2013-01", runs.FAILED), ("a", "2013-02", runs.FINISHED)], runs.FAILED),
        ([("a", None, runs.FINISHED), ("b", None, runs.FINISHED)], runs.FINISHED),
    ],
    ids=["retried-ok", "retry-failed", "killed", "other-partition", "all-ok"],
)
def test_the_parent_fails_when_the_latest_attempt_of_an_asset_partition_failed(
    client: MlflowClient,
    experiment: str,
    attempts: list[tuple[str, str | None, str]],
    expected: str,
) -> None:
    parent = _elect(client, experiment, "dagster-a")
    for offset, (asset, partition, status) in enumerate(attempts):
        _child(client, experiment, parent, asset, status, start=1_000 + offset, partition=partition)
    assert runs.finish_parent(client, experiment, parent) == expected
    assert client.get_run(parent).info.status == expected


def test_closing_a_failed_dagster_run_fails_what_was_left_open(
    client: MlflowClient, experiment: str
) -> None:
    parent = _elect(client, experiment, "dagster-a")
    finished = _child(client, experiment, parent, "a", runs.FINISHED, start=1_000)
    failed = _child(client, experiment, parent, "b", runs.FAILED, start=1_001)
    running = _child(client, experiment, parent, "c", runs.RUNNING, start=1_002)
    client.set_terminated(parent, status=runs.FINISHED)
    other = _elect(client, experiment, "dagster-b")

    changed = runs.close_failed_run(client, experiment, "dagster-a", "step c: boom")
    assert sorted(changed) == sorted([running, parent])
    statuses = {r: client.get_run(r).info.status for r in (finished, failed, running, parent)}
    assert statuses == {
        finished: runs.FINISHED,  # its body succeeded
        failed: runs.FAILED,
        running: runs.FAILED,
        parent: runs.FAILED,
    }
    assert client.get_run(parent).data.tags[FAILURE_TAG] == "step c: boom"
    assert FAILURE_TAG not in client.get_run(failed).data.tags
    assert client.get_run(other).info.status == runs.RUNNING  # another Dagster run's
    assert runs.close_failed_run(client, experiment, "dagster-a", "again") == []


def test_a_retry_ends_what_its_earlier_attempts_left_running(
    client: MlflowClient, experiment: str
) -> None:
    parent = _elect(client, experiment, "dagster-a")
    left = _child(client, experiment, parent, "a", runs.RUNNING, start=1_000, partition="2013-01")
    other_month = _child(
        client, experiment, parent, "a", runs.RUNNING, start=1_001, partition="2013-02"
    )
    other_asset = _child(
        client, experiment, parent, "b", runs.RUNNING, start=1_002, partition="2013-01"
    )
    ended = runs.close_earlier_attempts(client, experiment, parent, "a", "2013-01")
    assert ended == [left]
    assert client.get_run(left).info.status == runs.FAILED
    assert "unreachable" in client.get_run(left).data.tags[FAILURE_TAG]
    assert client.get_run(other_month).info.status == runs.RUNNING
    assert client.get_run(other_asset).info.status == runs.RUNNING


def test_an_unpartitioned_retry_ends_only_unpartitioned_runs(
    client: MlflowClient, experiment: str
) -> None:
    parent = _elect(client, experiment, "dagster-a")
    left = _child(client, experiment, parent, "a", runs.RUNNING, start=1_000)
    month = _child(client, experiment, parent, "a", runs.RUNNING, start=1_001, partition="2013-01")
    assert runs.close_earlier_attempts(client, experiment, parent, "a", None) == [left]
    assert client.get_run(month).info.status == runs.RUNNING


@pytest.fixture(autouse=True)
def _no_leftover_active_run() -> Iterator[None]:
    yield
    import mlflow

    assert mlflow.active_run() is None


class LateClient(MlflowClient):
    """Another process creates the experiment between this one's lookup and its creation."""

    def get_experiment_by_name(self, name: str) -> Any:
        found = super().get_experiment_by_name(name)
        if found is None and not getattr(self, "raced", False):
            self.raced = True
            MlflowClient(tracking_uri=self._tracking_client.tracking_uri).create_experiment(name)
        return found


def test_the_experiment_is_created_once_and_a_racing_creator_finds_it(store: str) -> None:
    client = MlflowClient(tracking_uri=store)
    created = runs.experiment_id(client, "created-here", None)
    assert runs.experiment_id(client, "created-here", None) == created
    late = LateClient(tracking_uri=store)
    found = runs.experiment_id(late, "created-by-a-rival", None)
    rival = client.get_experiment_by_name("created-by-a-rival")
    assert late.raced and rival is not None
    assert found == rival.experiment_id
