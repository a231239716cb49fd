"""The production profile end to end, on the machine's real services: Dagster storage in
PostgreSQL, MLflow served by ``mlops-assets tracking-server`` from PostgreSQL, and every step
run by one of two Celery workers fed through RabbitMQ. Each module run has its own databases
and virtual host, removed afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
import psycopg2
import pytest
from mlflow import MlflowClient

from mlops_assets.ml.columns import FEATURE_COLUMNS
from mlops_assets.runtime import local_instance
from mlops_assets.tracking.handle import RunHandle
from mlops_assets_tests.contract import (
    ASSET_KEYS,
    FIRST_QUARTER,
    QUICK_SEARCH,
    mlflow_tracking_uri,
)
from mlops_assets_tests.services import scratch_database, scratch_vhost
from mlops_assets_tests.stack import (
    BIN,
    ROOT,
    Server,
    free_port,
    group_members,
    job_command,
    processes_using,
    start_celery_worker,
    start_server,
    start_tracking_server,
    wait_until,
)

pytestmark = pytest.mark.e2e

WORKERS = ("mlops-1", "mlops-2")
MONTHLY = {
    "raw_flights",
    "raw_weather",
    "raw_planes",
    "flight_features",
    "flight_delay_predictions",
    "feature_drift",
}
DELEGATED = "in celery worker"
MODEL = "flight_delay_classifier"


@dataclass
class Production:
    """The running production profile: its environment, instance, servers and stores."""

    env: dict[str, str]
    instance: dg.DagsterInstance
    mlflow_url: str
    mlflow_db: str
    dagster_db: str
    workers: dict[str, Server]
    """Every server started, by name: the workers and the tracking server."""
    root: Path
    logs: Path

    def start_worker(self, name: str) -> None:
        self.workers[name] = start_celery_worker(name, self.env, self.logs)


@pytest.fixture(scope="module")
def production(
    tmp_path_factory: pytest.TempPathFactory, first_quarter_landing: Path
) -> Iterator[Production]:
    root = tmp_path_factory.mktemp("production")
    data, home, logs = root / "data", root / "dagster_home", root / "logs"
    shutil.copytree(first_quarter_landing, data / "landing")
    logs.mkdir()
    local_instance.prepare_dagster_home(home, ROOT / "deploy" / "production" / "dagster.yaml")
    port = free_port()
    mlflow_url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        dagster_db = stack.enter_context(scratch_database("mlops_dagster"))
        mlflow_db = stack.enter_context(scratch_database("mlops_mlflow"))
        broker = stack.enter_context(scratch_vhost("mlops"))
        env = {
            **os.environ,
            "MLOPS_ENV": "production",
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": dagster_db,
            "MLOPS_DATA_DIR": str(data),
            "MLFLOW_TRACKING_URI": mlflow_url,
            "MLOPS_MLFLOW_UI_URL": mlflow_url,
            "MLOPS_CELERY_BROKER": broker,
            "MLOPS_CELERY_BACKEND": "rpc://",
        }
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name in ("DAGSTER_HOME", "DAGSTER_PG_URL", "MLOPS_DATA_DIR", "MLFLOW_TRACKING_URI"):
            patch.setenv(name, env[name])
        # The workers (a restarted one replaces its entry), then the tracking server.
        started: dict[str, Server] = {}

        def stop_servers() -> None:
            for server in reversed(started.values()):
                server.stop()

        stack.callback(stop_servers)
        started["tracking-server"] = start_tracking_server(port, mlflow_db, root, env)
        instance = stack.enter_context(dg.DagsterInstance.get())
        running = Production(env, instance, mlflow_url, mlflow_db, dagster_db, started, root, logs)
        for name in WORKERS:
            running.start_worker(name)
        try:
            yield running
        except BaseException as error:
            for server in started.values():
                error.add_note(f"--- {server.name} ---\n{server.tail()}")
            raise


def _launch(production: Production, job: str, month: str | None = None) -> subprocess.Popen[bytes]:
    """A run of ``job`` (on ``month``) in its own process, as the run launcher starts one."""
    config = None
    if job == "retrain_job":
        config = production.root / "quick_search.json"
        config.write_text(json.dumps(QUICK_SEARCH))
    command = job_command(job, config, (month, month) if month else None)
    with (production.logs / f"{job}-{month or 'all'}.log").open("ab") as log:
        return subprocess.Popen(
            command, cwd=ROOT, env=production.env, stdout=log, stderr=subprocess.STDOUT
        )


def _run_all(production: Production, launched: list[subprocess.Popen[bytes]]) -> None:
    for process in launched:
        process.wait(timeout=900)
    failed = [p.args for p in launched if p.returncode]
    assert not failed, f"runs failed: {failed}"


def _delegations(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step, worker) of each time a Celery worker took a step of the run."""
    found = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if DELEGATED in record.message and record.dagster_event is not None:
            metadata = record.dagster_event.engine_event_data.metadata
            found.append((str(record.step_key), str(metadata["Celery worker"].value)))
    return found


def test_the_pipeline_runs_on_postgresql_a_tracking_server_and_two_celery_workers(
    production: Production,
) -> None:
    instance = production.instance
    instance.add_dynamic_partitions("month", FIRST_QUARTER)
    # The months' runs at the same time: their steps spread over both workers.
    _run_all(production, [_launch(production, "month_job", m) for m in FIRST_QUARTER])
    _run_all(production, [_launch(production, "retrain_job")])
    _run_all(production, [_launch(production, "scoring_job", m) for m in FIRST_QUARTER])

    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    runs = instance.get_runs()
    assert len(runs) == 3 + 1 + 3
    assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
    # What the webserver and the daemon read comes from the database itself.
    with psycopg2.connect(production.dagster_db) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT run_id, status FROM runs")
        assert sorted(cursor.fetchall()) == sorted((run.run_id, "SUCCESS") for run in runs)
        cursor.execute(
            "SELECT asset_key, count(*) FROM event_logs"
            " WHERE dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY asset_key"
        )
        assert dict(cursor.fetchall()) == {
            f'["{asset}"]': 3 if asset in MONTHLY else 1 for asset in ASSET_KEYS
        }
    worker_pids = {
        pid for name in WORKERS for pid in group_members(production.workers[name].process.pid)
    }
    used = set()
    for run in runs:
        delegated = _delegations(instance, run.run_id)
        starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
        # Every step was taken by a worker and started in one of its processes.
        assert sorted(step for step, _ in delegated) == sorted(str(r.step_key) for r in starts)
        assert {r.dagster_event.pid for r in starts if r.dagster_event} <= worker_pids
        used |= {worker.split("@")[0] for _, worker in delegated}
    assert used == set(WORKERS)

    # MLflow: the runs, the registry and its alias are in the tracking server's PostgreSQL.
    client = MlflowClient(production.mlflow_url)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    with psycopg2.connect(production.mlflow_db) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT alias, version FROM registered_model_aliases WHERE name = %s", [MODEL]
        )
        assert ("champion", int(champion.version)) in cursor.fetchall()
        cursor.execute("SELECT count(*) FROM runs")
        assert cursor.fetchone()[0] > 8
    # The store's URL (a password in production) is in no process's command line.
    server = production.workers["tracking-server"]
    for pid in group_members(server.process.pid):
        assert production.mlflow_db not in Path(f"/proc/{pid}/cmdline").read_text()
    # Artifacts went through the server (served artifacts), not to the runs' own disk paths.
    training_run = client.get_run(str(champion.run_id))
    assert training_run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert any((production.root / "artifacts").rglob("MLmodel"))
    _loads_leave_no_copy(production, f"models:/{MODEL}@champion")


def _loads_leave_no_copy(production: Production, uri: str) -> None:
    """The steps' loader (scoring, drift, evaluation) downloads a model through the server
    into a folder it removes; MLflow alone leaves one in the temporary folder per load."""
    scratch = production.root / "tmp"
    scratch.mkdir()
    rows = pd.read_parquet(
        production.root / "data" / "lake" / "flight_features" / "2013-03.parquet"
    )
    rows = rows.tail(50)[list(FEATURE_COLUMNS)]
    with mlflow_tracking_uri(production.mlflow_url), pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(scratch))  # where temporary folders go
        expected = mlflow.pyfunc.load_model(uri).predict(rows)
        left = list(scratch.iterdir())  # positive control: MLflow's copy is still there
        assert len(left) == 1 and (left[0] / "MLmodel").exists()
        shutil.rmtree(left[0])
        model = RunHandle.load_model(uri)
        assert list(scratch.iterdir()) == []
    pd.testing.assert_frame_equal(model.predict(rows), expected)


def test_the_workers_command_starts_n_workers_and_stops_them_on_sigterm(
    production: Production,
) -> None:
    """``mlops-assets workers --count 2``, as an operator runs it, then Ctrl-C / SIGTERM."""
    marker = f"workers-command-{uuid.uuid4().hex}"
    # Its own names: a name a running worker holds is refused by the broker.
    command = [str(BIN / "mlops-assets"), "workers", "--count", "2", "--prefix", "command"]
    supervisor = start_server(
        "workers-command", command, {**production.env, "MLOPS_TEST_MARKER": marker}, production.logs
    )
    try:
        wait_until(
            lambda: supervisor.log.read_text(errors="replace").count(" ready.") == 2,
            120,
            "both workers of the command ready",
        )
        assert "2 Celery worker(s) command-1..command-2@" in supervisor.log.read_text()
        assert len(processes_using(marker)) >= 1 + 2  # the command and its two workers
        supervisor.process.send_signal(signal.SIGTERM)  # to the command alone: it stops them
        assert supervisor.process.wait(timeout=120) == 0
        wait_until(lambda: not processes_using(marker), 30, "the workers to exit")
    finally:
        supervisor.stop()

    # A worker that cannot serve (here: its name is held by a running worker) stops the
    # command with a failure, rather than leaving a pool that silently shrank.
    clash_marker = f"workers-clash-{uuid.uuid4().hex}"
    try:
        clash = subprocess.run(
            [str(BIN / "mlops-assets"), "workers", "--count", "2"],
            cwd=ROOT,
            env={**production.env, "MLOPS_TEST_MARKER": clash_marker},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:  # its workers run in sessions of their own: a timeout must not leave them
        for pid in processes_using(clash_marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert clash.returncode != 0
    assert "a worker exited with status 1 on its own" in clash.stdout


def test_a_worker_killed_in_the_middle_of_a_step_hands_it_to_the_other(
    production: Production,
) -> None:
    instance = production.instance
    known = {run.run_id for run in instance.get_runs()}
    launched = _launch(production, "retrain_job")

    def training_taken() -> list[tuple[str, str]]:
        for run in instance.get_runs(filters=dg.RunsFilter(job_name="retrain_job")):
            if run.run_id not in known:
                return [d for d in _delegations(instance, run.run_id) if d[0] == "trained_model"]
        return []

    wait_until(lambda: bool(training_taken()), 300, "a worker to take trained_model", 0.2)
    ((_, first),) = training_taken()
    victim = first.split("@")[0]
    production.workers[victim].stop(crash=True)  # SIGKILL: the machine went away
    try:
        _run_all(production, [launched])
    finally:
        production.start_worker(victim)  # later tests find two workers again

    (run,) = [r for r in instance.get_runs() if r.run_id not in known]
    assert run.status == dg.DagsterRunStatus.SUCCESS
    # The killed worker's task went back to the broker, and the other worker ran the step.
    taken = [
        worker.split("@")[0]
        for step, worker in _delegations(instance, run.run_id)
        if step == "trained_model"
    ]
    assert taken == [victim, next(name for name in WORKERS if name != victim)]
