"""A tracking-server outage, and two runs moving @champion at once, against a real MLflow server.

``mlflow server`` runs as a subprocess on a free loopback port, its SQLite store and artifacts
in the test's folder; the tests stop it (or freeze it) during runs and start it again. The
Dagster instance is the shipped one (``deploy/local/dagster.yaml``, whose concurrency pool
lets one registry step run at a time). Two months of real data (train on January, hold out
February) keep the model runs short. The tests share the module's stack and run in order; each
one first makes the registry state it needs if an earlier test did not leave it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from mlops_assets import definitions
from mlops_assets.cli import rebuild
from mlops_assets.defs.shared.policies import (
    MLFLOW_RETRY,
    REGISTRY_POOL,
    mlflow_outage_wait,
    mlflow_retry,
)
from mlops_assets.landing import layout
from mlops_assets.resources import MlflowTracking
from mlops_assets.resources.mlflow_tracking import DAGSTER_RUN_TAG, PARENT_RUN_TAG
from mlops_assets.runtime import local_instance, settings
from mlops_assets.tracking.registry import (
    AliasMove,
    alias_history,
    find_registration,
    move_alias,
    record_move,
)
from mlops_assets_tests.contract import FAST_RUN_CONFIG
from mlops_assets_tests.stack import ROOT, MlflowServer, job_command, mlflow_server, wait_until

pytestmark = pytest.mark.e2e

MODEL = "flight_delay_classifier"
EVALUATION = {"model_evaluation": FAST_RUN_CONFIG["ops"]["model_evaluation"]}
# One month of training data: a floor the model reaches, and any AUC difference accepted, so
# that a retrained (identical) model is promoted over the champion it equals.
LENIENT_GATE = {"registered_model": {"config": {"min_roc_auc": 0.5, "min_lower_bound": -1.0}}}
RETRAIN = {"ops": {**FAST_RUN_CONFIG["ops"], **LENIENT_GATE}}
ATTEMPTS = MLFLOW_RETRY.max_retries + 1
FAST_BACKOFF_S = 0.5
"""``MLOPS_MLFLOW_RETRY_DELAY_S`` of the run that meets a lasting outage: the same retries as
the shipped 2 s (test_faults checks their waits) in a quarter of the time."""


def retrain_job() -> dg.JobDefinition:
    """The product's retraining job, reconstructable for execute_job (and re-execution)."""
    return definitions.defs.resolve_job_def("retrain_job")


@dataclass
class Stack:
    """The module's MLflow server and Dagster instance."""

    server: MlflowServer
    instance: dg.DagsterInstance
    root: Path

    def client(self) -> MlflowClient:
        return MlflowClient(self.server.url)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A running MLflow server, the shipped instance, and January-February 2013 ingested."""
    root = tmp_path_factory.mktemp("outage")
    data, home = root / "data", root / "dagster_home"
    local_instance.prepare_dagster_home(home, ROOT / "deploy" / "local" / "dagster.yaml")
    layout.seed_landing_zone(data / "landing", "2013-02")
    with ExitStack() as stack_:
        server = stack_.enter_context(mlflow_server(root / "mlflow"))
        patch = stack_.enter_context(pytest.MonkeyPatch.context())
        for name in MlflowTracking().http_environment():  # the runs set them: restore them
            patch.delenv(name, raising=False)
        for name, value in {
            "MLOPS_DATA_DIR": str(data),
            "DAGSTER_HOME": str(home),
            "MLFLOW_TRACKING_URI": server.url,
            "MLOPS_MLFLOW_UI_URL": server.url,
        }.items():
            patch.setenv(name, value)
        instance = stack_.enter_context(dg.DagsterInstance.get())
        rebuild.ingest(definitions.defs, instance, data / "landing")
        yield Stack(server, instance, root)


def _versions(client: MlflowClient) -> dict[str, dict[str, str]]:
    return {v.version: dict(v.tags) for v in client.search_model_versions(f"name = '{MODEL}'")}


def _alias(client: MlflowClient, alias: str) -> str | None:
    from mlops_assets.tracking.registry import current_version

    return current_version(client, MODEL, alias)


def _moves(client: MlflowClient) -> list[AliasMove]:
    return alias_history(client, MODEL) if _versions(client) else []


def _retrain(
    stack: Stack,
    run_config: Mapping[str, Any],
    selection: Sequence[str] | None = None,
    run_id: str | None = None,
) -> dg.ExecuteInProcessResult:
    return retrain_job().execute_in_process(
        instance=stack.instance,
        run_config=run_config,
        asset_selection=[dg.AssetKey(key) for key in selection] if selection else None,
        run_id=run_id,
        raise_on_error=False,
    )


def _ensure_a_replaced_champion(stack: Stack) -> None:
    """Make sure @champion replaced an earlier champion (what a rollback goes back to)."""
    client = stack.client()
    if _alias(client, "champion") is None:
        assert _retrain(stack, RETRAIN).success
    if not any(m.alias == "champion" and m.from_version for m in _moves(client)):
        selection = ["model_evaluation", "registered_model"]
        assert _retrain(stack, {"ops": {**EVALUATION, **LENIENT_GATE}}, selection).success


def _mlflow_runs(client: MlflowClient, dagster_run_id: str) -> tuple[Run, list[Run]]:
    experiment = client.get_experiment_by_name("flight_delay")
    assert experiment is not None
    (parent,) = client.search_runs(
        [experiment.experiment_id], f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'"
    )
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'"
    )
    return parent, children


def _messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [record.message for record in instance.all_logs(run_id)]


def test_registry_writes_cut_by_an_outage_are_completed_on_retry_not_repeated(
    tmp_path: Path,
) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_registered_model(MODEL)
    (tmp_path / "model").mkdir()
    registration = {"training_run_id": "t1", "evaluation_run_id": "e1", "dagster.root_run_id": "r1"}
    client.create_model_version(MODEL, str(tmp_path / "model"), tags=registration)
    # A retry (or a re-execution: same root run) finds the version its registration created;
    # another registration of the same model, or another evaluation of it, does not.
    assert find_registration(client, MODEL, registration) == "1"
    assert find_registration(client, MODEL, {**registration, "dagster.root_run_id": "r2"}) is None
    assert find_registration(client, MODEL, {**registration, "evaluation_run_id": "e2"}) is None

    def champion_moves() -> list[tuple[str | None, str, str]]:
        moves = alias_history(client, MODEL, "champion")
        return [(m.from_version, m.to_version, m.dagster_run_id) for m in moves]

    # The move was recorded, then MLflow went away before the alias moved: the retry moves
    # it, under the record already written.
    record_move(client, MODEL, "champion", "1", from_version=None, dagster_run_id="r1", reason="x")
    assert _alias(client, "champion") is None
    move_alias(client, MODEL, "champion", "1", dagster_run_id="r1-retry", reason="x")
    assert (_alias(client, "champion"), champion_moves()) == ("1", [(None, "1", "r1")])
    # Both requests went through and the step failed after them: the retry changes nothing.
    move_alias(client, MODEL, "champion", "1", dagster_run_id="r1-retry", reason="x")
    assert champion_moves() == [(None, "1", "r1")]
    # A new move is recorded as usual.
    client.create_model_version(MODEL, str(tmp_path / "model"))
    move_alias(client, MODEL, "champion", "2", dagster_run_id="r2", reason="y")
    assert (_alias(client, "champion"), champion_moves()) == (
        "2",
        [(None, "1", "r1"), ("1", "2", "r2")],
    )


def test_a_server_restarted_during_a_run_the_run_recovers_by_retrying(stack: Stack) -> None:
    client = stack.client()
    before = _versions(client)
    run_id = str(uuid.uuid4())
    outage: dict[str, float] = {}
    errors: list[BaseException] = []

    def restart_when_the_evaluation_starts() -> None:
        try:
            with dg.DagsterInstance.from_ref(stack.instance.get_ref()) as watcher:

                def evaluation_started() -> bool:
                    starts = watcher.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
                    return any(r.step_key == "model_evaluation" for r in starts)

                wait_until(evaluation_started, 600, "model_evaluation to start", interval=0.1)
            outage["down"] = time.monotonic()
            stack.server.stop(crash=True)
            stack.server.start()
            outage["up"] = time.monotonic()
        except BaseException as error:  # noqa: BLE001  (re-raised in the test's thread)
            errors.append(error)

    restarter = threading.Thread(target=restart_when_the_evaluation_starts, daemon=True)
    restarter.start()
    result = _retrain(stack, RETRAIN, run_id=run_id)
    restarter.join(timeout=300)
    if errors:
        raise errors[0]
    assert result.success, _messages(stack.instance, run_id)[-20:]
    assert {"down", "up"} <= set(outage)

    # The steps that met the outage were retried, and said so in the step log.
    retried = [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried and set(retried) <= {"model_evaluation", "registered_model"}
    warnings = [m for m in _messages(stack.instance, run_id) if "unreachable on attempt" in m]
    assert any(
        f"MLflow at {stack.server.url} unreachable on attempt 1 of {ATTEMPTS}" in m
        for m in warnings
    )

    # One new version, however many attempts: @challenger, and @champion (the floor is met).
    added = sorted(set(_versions(client)) - set(before), key=int)
    assert len(added) == 1
    assert _alias(client, "challenger") == added[0]
    if not before:
        assert _alias(client, "champion") == added[0]
    # MLflow is consistent: the run's parent ended FINISHED, no attempt's run left RUNNING.
    parent, children = _mlflow_runs(client, run_id)
    assert parent.info.status == "FINISHED"
    assert "RUNNING" not in {child.info.status for child in children}
    evaluations = [c for c in children if c.data.tags["dagster.asset_key"] in set(retried)]
    latest = max(evaluations, key=lambda run: int(run.data.tags["dagster.attempt"]))
    assert latest.info.status == "FINISHED"


def test_b_server_down_for_good_the_run_fails_clearly_then_reexecution_completes(
    stack: Stack, tmp_path: Path
) -> None:
    client = stack.client()
    if _alias(client, "champion") is None:
        assert _retrain(stack, RETRAIN).success
    evaluated = _retrain(stack, {"ops": EVALUATION}, ["model_evaluation"])
    assert evaluated.success
    champion, challenger = _alias(client, "champion"), _alias(client, "challenger")
    versions, moves = _versions(client), _moves(client)

    # The run in a process of its own, as the run launcher starts one, with this deployment's
    # retry delay (the code location reads it when it is built).
    config = tmp_path / "lenient_gate.json"
    config.write_text(json.dumps({"ops": LENIENT_GATE}))
    command = [*job_command("retrain_job", config), "--op-selection", "registered_model"]
    known = {run.run_id for run in stack.instance.get_runs()}
    stack.server.stop()
    started = time.monotonic()
    run = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, settings.MLFLOW_RETRY_DELAY_ENV: str(FAST_BACKOFF_S)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    took = time.monotonic() - started
    stack.server.start()

    assert run.returncode != 0, run.stdout[-2000:]
    (failed,) = [r for r in stack.instance.get_runs() if r.run_id not in known]
    assert failed.status == dg.DagsterRunStatus.FAILURE
    starts = stack.instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.STEP_START)
    assert {start.step_key for start in starts} == {"registered_model"}
    (failure,) = stack.instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "registered_model" and failure.dagster_event is not None
    data = failure.dagster_event.step_failure_data.user_failure_data
    assert data is not None and data.description is not None
    assert data.description.startswith(
        f"MLflow at {stack.server.url} was unreachable after {ATTEMPTS} attempts "
        "(ConnectionRefusedError: [Errno 111] Connection refused). Start the tracking server"
    )
    retries = stack.instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(retries) == ATTEMPTS - 1
    # Dagster waited as the deployment's delay says: (2**n - 1) x 0.5 s +- 0.5 s before the
    # n-th retry (the shipped 2 s would wait 14 +- 2 s before the third).
    for n, retry in enumerate(retries, start=1):
        assert retry.dagster_event is not None
        waited = retry.dagster_event.step_retry_data.seconds_to_wait
        assert waited is not None and abs(waited - (2**n - 1) * FAST_BACKOFF_S) <= FAST_BACKOFF_S
    # The wait is Dagster's backoff, not the MLflow client's retries multiplied by it
    # (MLflow's defaults would take over 20 minutes); 30 s of slack for the run's start and
    # the steps' own work.
    fast = mlflow_retry(FAST_BACKOFF_S)
    assert took < mlflow_outage_wait(MlflowTracking(), policy=fast) + 30, took

    # Nothing was half-written: no new version, the aliases and their records unchanged.
    assert (_alias(client, "champion"), _versions(client), _moves(client)) == (
        champion,
        versions,
        moves,
    )

    retried = dg.execute_job(
        dg.reconstructable(retrain_job),
        instance=stack.instance,
        run_config={"ops": LENIENT_GATE},
        reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, stack.instance),
    )
    assert retried.success
    (added,) = set(_versions(client)) - set(versions)
    tags = _versions(client)[added]
    assert tags["dagster.root_run_id"] == failed.run_id
    assert tags["gate"] == "passed" and tags["gate_reason"].startswith("promoted")
    assert (_alias(client, "champion"), _alias(client, "challenger")) == (added, added)
    new_moves = _moves(client)[len(moves) :]
    assert [(m.alias, m.from_version, m.to_version) for m in new_moves] == [
        ("challenger", challenger, added),
        ("champion", champion, added),
    ]
    assert {m.dagster_run_id for m in new_moves} == {retried.run_id}


LOCK = f"registry lock of {MODEL}"


def _registry_writes(instance: dg.DagsterInstance, run_id: str) -> list[tuple[float, float]]:
    """(start, end) of each time the run held the registry lock, from its event log."""
    held, started = [], None
    for record in instance.all_logs(run_id):
        if record.message == f"{LOCK}: held":
            started = record.timestamp
        elif record.message == f"{LOCK}: released" and started is not None:
            held.append((started, record.timestamp))
            started = None
    return held


def test_c_two_runs_moving_the_champion_at_once_are_serialized(
    stack: Stack, tmp_path: Path
) -> None:
    _ensure_a_replaced_champion(stack)
    client = stack.client()
    history = alias_history(client, MODEL, "champion")
    champion, previous = history[-1].to_version, str(history[-1].from_version)
    known = {run.run_id for run in stack.instance.get_runs()}

    def rollback_runs() -> list[str]:
        runs = stack.instance.get_runs(filters=dg.RunsFilter(job_name="rollback_job"))
        return [run.run_id for run in runs if run.run_id not in known]

    def at_the_registry() -> dict[str, str]:
        """Each new rollback run that is "writing" the registry, or "waiting" to."""
        states = {}
        for run_id in rollback_runs():
            messages = _messages(stack.instance, run_id)
            if f"{LOCK}: held" in messages:
                states[run_id] = "writing"
            elif any(
                f"blocked by limit for pool {REGISTRY_POOL}" in m
                or m.startswith(f"{LOCK}: waiting")
                for m in messages
            ):
                states[run_id] = "waiting"
        return states

    # Freeze the server, so that the run that gets the pool's slot first hangs in its
    # registry step (a slow registry write) while the other one asks for the slot.
    processes = []
    stack.server.pause()
    try:
        for n in (1, 2):
            config = tmp_path / f"rollback_{n}.yaml"
            # The frozen server's first answer may take a while: a long request timeout keeps
            # the first run in its step (rather than retrying it) until the server resumes.
            config.write_text(
                f"ops:\n  roll_back_champion:\n    config:\n      reason: concurrent rollback {n}\n"
                "resources:\n  mlflow_tracking:\n    config:\n      http_timeout_seconds: 120\n"
            )
            with (tmp_path / f"rollback_{n}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        job_command("rollback_job", config),
                        cwd=ROOT,
                        env=dict(os.environ),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        wait_until(lambda: len(at_the_registry()) == 2, 240, "both rollbacks at the registry")
        # One writes, the other waits: for the pool's slot, or (when both claimed the slot in
        # the same instant, which Dagster's SQLite storage lets through) for the lock.
        assert sorted(at_the_registry().values()) == ["waiting", "writing"]
        stack.server.resume()
        for process in processes:
            process.wait(timeout=300)
    finally:
        stack.server.resume()
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for run_id in rollback_runs():  # a killed run keeps its slot: free it, as the UI does
            stack.instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    logs = "\n".join((tmp_path / f"rollback_{n}.log").read_text() for n in (1, 2))
    assert [process.returncode for process in processes] == [0, 0], logs[-5000:]

    runs = rollback_runs()
    writes = {run_id: _registry_writes(stack.instance, run_id) for run_id in runs}
    first, second = sorted(runs, key=lambda run_id: writes[run_id][-1][1])
    # No registry write of one run overlapped one of the other's.
    for start, end in writes[first]:
        for other_start, other_end in writes[second]:
            assert end <= other_start or other_end <= start, writes
    # The registry ends as one serial order leaves it: the first run rolled back, the second
    # then rolled back that rollback (not both from the same champion, as a race would).
    moves = alias_history(client, MODEL, "champion")[len(history) :]
    assert [(m.from_version, m.to_version, m.dagster_run_id) for m in moves] == [
        (champion, previous, first),
        (previous, champion, second),
    ]
    assert _alias(client, "champion") == champion


def rollback_job() -> dg.JobDefinition:
    """The product's rollback job, reconstructable for execute_job (and re-execution)."""
    return definitions.defs.resolve_job_def("rollback_job")


def test_d_a_rollback_reexecuted_after_it_moved_the_champion_does_not_roll_back_twice(
    stack: Stack,
) -> None:
    _ensure_a_replaced_champion(stack)
    client = stack.client()
    history = alias_history(client, MODEL, "champion")
    champion, previous = history[-1].to_version, str(history[-1].from_version)
    rollback = {"ops": {"roll_back_champion": {"config": {"reason": "outage drill"}}}}
    # A rollback run that fails at once (it is pointed at a model that does not exist) ...
    failed = dg.execute_job(
        dg.reconstructable(rollback_job),
        instance=stack.instance,
        run_config={**rollback, "resources": {"mlflow_tracking": {"config": {"model_name": "x"}}}},
        raise_on_error=False,
    )
    assert not failed.success
    # ... stands for one that recorded and made its move, then lost MLflow before the end.
    move_alias(client, MODEL, "champion", previous, dagster_run_id=failed.run_id, reason="r")
    reexecuted = dg.execute_job(
        dg.reconstructable(rollback_job),
        instance=stack.instance,
        run_config=rollback,
        reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, stack.instance),
    )
    assert reexecuted.success
    # It completed that rollback; it did not roll back from there (to the champion it left).
    assert _alias(client, "champion") == previous
    after = alias_history(client, MODEL, "champion")[len(history) :]
    assert [(m.from_version, m.to_version, m.dagster_run_id) for m in after] == [
        (champion, previous, failed.run_id)
    ]
    assert _versions(client)[champion]["rolled_back_by_run"] == reexecuted.run_id
