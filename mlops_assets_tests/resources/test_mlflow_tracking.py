"""MLflow run lifecycle under multiprocess execution and re-execution from failure."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from mlops_assets import definitions
from mlops_assets.cli import rebuild
from mlops_assets.defs.monitoring.run_failure_sensors import mlflow_run_failure_sensor
from mlops_assets.landing import layout
from mlops_assets.resources import MlflowTracking
from mlops_assets.resources.mlflow_tracking import DAGSTER_RUN_TAG, PARENT_RUN_TAG
from mlops_assets_tests.contract import FAST_RUN_CONFIG

pytestmark = pytest.mark.e2e

RAW = [dg.AssetKey("raw_flights"), dg.AssetKey("raw_weather"), dg.AssetKey("raw_planes")]


def multiprocess_raw_job() -> dg.JobDefinition:
    """The raw assets of a month on Dagster's multiprocess executor: three step processes."""
    job = dg.define_asset_job(
        "raw_multiprocess_job",
        selection=dg.AssetSelection.assets(*RAW),
        executor_def=dg.multiprocess_executor.configured({"max_concurrent": 3}),
    )
    return dg.Definitions.merge(definitions.defs, dg.Definitions(jobs=[job])).resolve_job_def(
        "raw_multiprocess_job"
    )


def retrain_job() -> dg.JobDefinition:
    """The product's retraining job, reconstructable for execute_job."""
    return definitions.defs.resolve_job_def("retrain_job")


def month_job() -> dg.JobDefinition:
    """The product's month job, reconstructable for execute_job."""
    return definitions.defs.resolve_job_def("month_job")


def _runs_of(client: MlflowClient, dagster_run_id: str) -> tuple[Run, list[Run]]:
    experiment = client.get_experiment_by_name("flight_delay")
    assert experiment is not None
    parents = client.search_runs(
        [experiment.experiment_id], f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'"
    )
    assert len(parents) == 1, [p.info.run_id for p in parents]
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parents[0].info.run_id}'"
    )
    return parents[0], children


def test_parallel_step_processes_share_one_parent_run(
    project_env: Path, instance: dg.DagsterInstance
) -> None:
    layout.seed_landing_zone(project_env / "landing", "2013-02")
    rebuild.register_months(instance, ["2013-02"])
    result = dg.execute_job(
        dg.reconstructable(multiprocess_raw_job),
        instance=instance,
        tags={"dagster/partition": "2013-02"},
    )
    assert result.success
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    parent, children = _runs_of(client, result.run_id)
    assert parent.info.status == "FINISHED"
    assert sorted(c.data.tags["dagster.asset_key"] for c in children) == [
        "raw_flights",
        "raw_planes",
        "raw_weather",
    ]
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["dagster.run_id"] for c in children} == {result.run_id}


def test_reexecution_from_failure_gets_its_own_parent_and_completes(
    project_env: Path, instance: dg.DagsterInstance
) -> None:
    layout.seed_landing_zone(project_env / "landing", "2013-02")
    rebuild.ingest(definitions.defs, instance, project_env / "landing")
    # The first run fails at registration: MLflow refuses the configured model name.
    failing = dg.execute_job(
        dg.reconstructable(retrain_job),
        instance=instance,
        run_config={
            **FAST_RUN_CONFIG,
            "resources": {"mlflow_tracking": {"config": {"model_name": "bad/name"}}},
        },
        raise_on_error=False,
    )
    assert not failing.success
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    first_parent, first_children = _runs_of(client, failing.run_id)
    assert first_parent.info.status == "FAILED"
    statuses = {c.data.tags["dagster.asset_key"]: c.info.status for c in first_children}
    assert statuses["registered_model"] == "FAILED"
    assert statuses["trained_model"] == "FINISHED"

    retried = dg.execute_job(
        dg.reconstructable(retrain_job),
        instance=instance,
        run_config=FAST_RUN_CONFIG,
        reexecution_options=dg.ReexecutionOptions.from_failure(failing.run_id, instance),
    )
    assert retried.success
    parent, children = _runs_of(client, retried.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["dagster.root_run_id"] == failing.run_id
    assert [c.data.tags["dagster.asset_key"] for c in children] == ["registered_model"]
    assert children[0].info.status == "FINISHED"
    # One month of training data: the version may miss the floor, it is always @challenger.
    version = client.get_model_version_by_alias("flight_delay_classifier", "challenger")
    assert version.tags["dagster.run_id"] == retried.run_id


def test_the_run_failure_sensor_closes_what_a_failure_outside_the_asset_body_left_open(
    project_env: Path, instance: dg.DagsterInstance
) -> None:
    layout.seed_landing_zone(project_env / "landing", "2013-01")
    rebuild.register_months(instance, ["2013-01"])
    blocker = project_env / "blocker"
    blocker.write_text("a file where the lake folder should be")
    # raw_planes computes fine, then its IO manager cannot write: the step fails after the
    # asset body (and its nested MLflow run) ended well. Retries are off to keep this short.
    failing = dg.execute_job(
        dg.reconstructable(month_job),
        instance=instance,
        asset_selection=[dg.AssetKey("raw_planes")],
        tags={"dagster/partition": "2013-01"},
        run_config={
            "execution": {"config": {"retries": {"disabled": {}}}},
            "resources": {"io_manager": {"config": {"base_path": str(blocker / "lake")}}},
        },
        raise_on_error=False,
    )
    assert not failing.success
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    parent, children = _runs_of(client, failing.run_id)
    assert (parent.info.status, [c.info.status for c in children]) == ("FINISHED", ["FINISHED"])

    failure = instance.get_records_for_run(
        failing.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records[0]
    assert failure.event_log_entry.dagster_event is not None
    context = dg.build_run_status_sensor_context(
        sensor_name="mlflow_run_failure_sensor",
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=failing.dagster_run,
        resources={"mlflow_tracking": MlflowTracking()},
    ).for_run_failure()
    mlflow_run_failure_sensor(context)
    parent, children = _runs_of(client, failing.run_id)
    assert parent.info.status == "FAILED"
    assert "raw_planes" in parent.data.tags["dagster.failure"]
    assert [c.info.status for c in children] == ["FINISHED"]  # its body did succeed
    mlflow_run_failure_sensor(context)  # a second tick changes nothing
    assert _runs_of(client, failing.run_id)[0].info.status == "FAILED"
