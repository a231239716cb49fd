"""dagster-mlflow's ``mlflow_tracking`` resource and this project's find the same parent run.

"The same Dagster run family" is taken here as the same Dagster run: both resources key the
parent MLflow run by the Dagster run id (the ``dagster_run_id`` tag), so two runs of a
re-execution family have two parents under either resource, and only within one run can
they share one. Each job below materializes two assets in one run, one logging through
dagster-mlflow's resource, the other through ``MlflowTracking``, one after the other:

- on the multiprocess executor, each step in its own process, so each resource is built
  when its step starts: both orders (whichever comes first creates the parent, the other
  finds it by the tag);
- in one process (``dg.materialize``), where dagster-mlflow's resource keeps its run active
  in MLflow's process-global state while this project's asset opens its own run.

Positive control: another Dagster run of the same job gets another parent.
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import mlflow
import pytest
from dagster_mlflow import mlflow_tracking
from mlflow import MlflowClient

from mlops_assets.resources import MlflowTracking
from mlops_assets.tracking import runs

pytestmark = pytest.mark.e2e

DAGSTER_MLFLOW = dg.AssetKey("logged_by_dagster_mlflow")
THIS_PROJECT = dg.AssetKey("logged_by_this_project")


def _definitions(dagster_mlflow_first: bool) -> dg.Definitions:
    """The two assets, the one named by ``dagster_mlflow_first`` upstream of the other."""

    @dg.asset(
        key=DAGSTER_MLFLOW,
        required_resource_keys={"mlflow"},
        deps=[] if dagster_mlflow_first else [THIS_PROJECT],
    )
    def logged_by_dagster_mlflow(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        tracking = context.resources.mlflow
        tracking.log_params({"side": "dagster-mlflow"})
        return dg.MaterializeResult(metadata={"parent_run_id": tracking.active_run().info.run_id})

    @dg.asset(key=THIS_PROJECT, deps=[DAGSTER_MLFLOW] if dagster_mlflow_first else [])
    def logged_by_this_project(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking
    ) -> dg.MaterializeResult:
        with mlflow_tracking.asset_run(context) as run:
            run.log_params({"side": "mlops_assets"})
        return dg.MaterializeResult(metadata={"parent_run_id": run.parent_run_id})

    return dg.Definitions(
        assets=[logged_by_dagster_mlflow, logged_by_this_project],
        jobs=[
            dg.define_asset_job(
                "interop_job",
                executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2}),
            )
        ],
        resources=_resources(),
    )


def _resources() -> dict[str, object]:
    return {
        "mlflow": mlflow_tracking.configured(
            {
                "experiment_name": "flight_delay",
                "mlflow_tracking_uri": {"env": "MLFLOW_TRACKING_URI"},
            }
        ),
        "mlflow_tracking": MlflowTracking(),
    }


def dagster_mlflow_first_job() -> dg.JobDefinition:
    """Reconstructable for execute_job: dagster-mlflow's step runs first."""
    return _definitions(dagster_mlflow_first=True).resolve_job_def("interop_job")


def this_project_first_job() -> dg.JobDefinition:
    """Reconstructable for execute_job: this project's step runs first."""
    return _definitions(dagster_mlflow_first=False).resolve_job_def("interop_job")


def _found_parents(instance: dg.DagsterInstance, run_id: str) -> dict[dg.AssetKey, str]:
    found = {}
    for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = record.event_log_entry.asset_materialization
        assert materialization is not None
        value = materialization.metadata["parent_run_id"].value
        assert isinstance(value, str)
        found[materialization.asset_key] = value
    return found


def _tagged_parents(client: MlflowClient, dagster_run_id: str) -> list[str]:
    experiment = client.get_experiment_by_name("flight_delay")
    assert experiment is not None
    return [
        run.info.run_id
        for run in runs.parent_runs(client, experiment.experiment_id, dagster_run_id)
    ]


@pytest.fixture
def client(project_env: Path) -> MlflowClient:
    """The store both resources use; the experiment made by this project's resource."""
    MlflowTracking().experiment_id()
    return MlflowClient(os.environ["MLFLOW_TRACKING_URI"])


@pytest.mark.parametrize(
    "job", [dagster_mlflow_first_job, this_project_first_job], ids=lambda job: job.__name__
)
def test_step_processes_of_both_resources_share_one_parent_run(
    client: MlflowClient, instance: dg.DagsterInstance, job: Callable[[], dg.JobDefinition]
) -> None:
    results = [dg.execute_job(dg.reconstructable(job), instance=instance) for _ in range(2)]
    assert all(result.success for result in results)
    parents = []
    for result in results:
        found = _found_parents(instance, result.run_id)
        assert found.keys() == {DAGSTER_MLFLOW, THIS_PROJECT}
        assert found[DAGSTER_MLFLOW] == found[THIS_PROJECT]
        # The one run tagged with the Dagster run: whoever came second created none.
        assert _tagged_parents(client, result.run_id) == [found[THIS_PROJECT]]
        parent = client.get_run(found[THIS_PROJECT])
        assert parent.data.params["side"] == "dagster-mlflow"  # it logged to the parent
        children = runs.child_runs(client, parent.info.experiment_id, parent.info.run_id)
        assert [child.data.params["side"] for child in children] == ["mlops_assets"]
        parents.append(found[THIS_PROJECT])
    # Positive control: the other Dagster run has another parent.
    assert parents[0] != parents[1]


@pytest.fixture
def no_active_run_left() -> Iterator[None]:
    """dagster-mlflow leaves its run active in this process (its hook would end it)."""
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.mark.usefixtures("no_active_run_left")
def test_in_one_process_this_project_nests_under_the_run_dagster_mlflow_keeps_active(
    client: MlflowClient, instance: dg.DagsterInstance
) -> None:
    assets = _definitions(dagster_mlflow_first=True).assets
    assert assets is not None
    found = []
    for _ in range(2):
        result = dg.materialize(list(assets), instance=instance, resources=_resources())  # type: ignore[arg-type]
        assert result.success
        parents = _found_parents(instance, result.run_id)
        assert parents[DAGSTER_MLFLOW] == parents[THIS_PROJECT]
        assert _tagged_parents(client, result.run_id) == [parents[THIS_PROJECT]]
        # dagster-mlflow's run is active again once this project's asset ended its own.
        active = mlflow.active_run()
        assert active is not None
        assert active.info.run_id == parents[DAGSTER_MLFLOW]
        mlflow.end_run()
        found.append(parents[THIS_PROJECT])
    assert found[0] != found[1]
