"""MLflow tracking injected into assets: one parent run per Dagster run, one nested run per asset.

What is kept from dagster-mlflow: its lookup of the Dagster run's MLflow run by the
``dagster_run_id`` tag (the same tag is set here, so runs made by either are found by the
other) and the idea of one MLflow run shared by every step process of a Dagster run.

What is replaced, and why: ``dagster_mlflow.mlflow_tracking`` is a legacy untyped
``@resource`` that copies all of ``mlflow`` onto a class through a metaclass and keeps one
process-global active run; its ``end_mlflow_on_run_finished`` hook ends the MLflow run after
the topologically last op *of the job*, so with an asset selection, a failure or steps in
several processes the run is closed early or never (dagster-io/dagster#21872). Here each
asset opens its own nested run and closes it FINISHED or FAILED when it ends; the parent's
status is recomputed from its children every time one of them ends, so the parent ends
FINISHED or FAILED whatever the executor, the selection, or re-execution from failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

from mlops_assets import gc_policy, settings
from mlops_assets.faults import is_transient
from mlops_assets.provenance import git_commit

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

# dagster-mlflow's tag for "the MLflow run of this Dagster run".
DAGSTER_RUN_TAG = "dagster_run_id"
PARENT_RUN_TAG = "mlflow.parentRunId"
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"


def log_files(files: dict[str, bytes], artifact_path: str) -> None:
    """Log in-memory files to the active MLflow run under ``artifact_path``, in one upload."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        for name, payload in files.items():
            (Path(scratch) / name).write_bytes(payload)
        mlflow.log_artifacts(scratch, artifact_path)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock between processes on this machine."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class AssetRun:
    """The nested MLflow run of one asset materialization (active while the block runs)."""

    run_id: str
    parent_run_id: str
    experiment_id: str
    url: str

    def metadata(self) -> dict[str, dg.MetadataValue]:
        """Dagster metadata that links the materialization to this MLflow run."""
        return {
            "mlflow_run": dg.MetadataValue.url(self.url),
            "mlflow_run_id": dg.MetadataValue.text(self.run_id),
        }


class MlflowTracking(dg.ConfigurableResource):
    """MLflow tracking and registry for the pipeline's assets."""

    tracking_uri: str | None = Field(
        default=None,
        description="Tracking URI; empty means $MLFLOW_TRACKING_URI, "
        "else sqlite:///<data dir>/mlflow.db.",
    )
    registry_uri: str | None = Field(
        default=None, description="Registry URI; empty means the tracking URI."
    )
    experiment_name: str = Field(
        default="flight_delay", description="Experiment that holds the runs."
    )
    artifact_location: str | None = Field(
        default=None,
        description=(
            "Artifact root for a new experiment; empty means <data dir>/mlartifacts for a local "
            "database store and the server's own default for an http(s) tracking server."
        ),
    )
    model_name: str = Field(default="flight_delay_classifier", description="Registered model name.")
    ui_url: str | None = Field(
        default=None,
        description="Base URL of the MLflow UI for links; empty means $MLOPS_MLFLOW_UI_URL, else "
        "the tracking URI when it is http(s), else http://127.0.0.1:5000.",
    )
    dagster_ui_url: str | None = Field(
        default=None,
        description="Base URL of the Dagster UI for links back; empty means "
        "$MLOPS_DAGSTER_UI_URL, else http://127.0.0.1:3000.",
    )

    _client: MlflowClient | None = PrivateAttr(default=None)
    _experiment_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Import MLflow before the first step body runs, with the collector paused."""
        with gc_policy.heavy_imports():
            import mlflow  # noqa: F401

    def resolved_tracking_uri(self) -> str:
        """The tracking URI in use."""
        return self.tracking_uri or settings.default_tracking_uri()

    def client(self) -> MlflowClient:
        """An MLflow client bound to this resource's tracking and registry URIs."""
        if self._client is None:
            from mlflow import MlflowClient

            uri = self.resolved_tracking_uri()
            # A client creates a new SQLite store's tables when it opens the store; step
            # processes doing so at once fail in alembic. Let one process at a time open it.
            opening = (
                _file_lock(Path(uri.removeprefix("sqlite:///") + ".init.lock"))
                if uri.startswith("sqlite:///")
                else nullcontext()
            )
            with opening:
                self._client = MlflowClient(tracking_uri=uri, registry_uri=self.registry_uri)
        return self._client

    def _ui_base(self) -> str:
        return (self.ui_url or settings.mlflow_ui_url(self.resolved_tracking_uri())).rstrip("/")

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """Link to a run in the MLflow UI."""
        return f"{self._ui_base()}/#/experiments/{experiment_id}/runs/{run_id}"

    def dagster_run_url(self, run_id: str) -> str:
        """Link to a run in the Dagster UI."""
        base = self.dagster_ui_url or settings.dagster_ui_url()
        return f"{base.rstrip('/')}/runs/{run_id}"

    def model_version_url(self, version: str) -> str:
        """Link to a registered model version in the MLflow UI."""
        return f"{self._ui_base()}/#/models/{self.model_name}/versions/{version}"

    def version_uri(self, version: str) -> str:
        """The ``models:/`` URI of one version of the registered model."""
        return f"models:/{self.model_name}/{version}"

    def alias_version(self, alias: str) -> str | None:
        """The registered model's version that carries ``alias``, or None when none does."""
        from mlops_assets.model_registry import current_version

        return current_version(self.client(), self.model_name, alias)

    def experiment_id(self) -> str:
        """The experiment's id, created on first use (safe when several processes race)."""
        if self._experiment_id is None:
            from mlflow.exceptions import MlflowException

            client = self.client()
            experiment = client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                location = self.artifact_location
                if location is None and not self.resolved_tracking_uri().startswith(
                    ("http://", "https://")
                ):
                    location = settings.default_artifact_location()
                try:
                    self._experiment_id = client.create_experiment(
                        self.experiment_name, artifact_location=location
                    )
                except MlflowException as error:
                    if error.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    experiment = client.get_experiment_by_name(self.experiment_name)
            if self._experiment_id is None:
                assert experiment is not None
                self._experiment_id = experiment.experiment_id
        return self._experiment_id

    def _parent_runs(self, dagster_run_id: str) -> list[Run]:
        runs = self.client().search_runs(
            [self.experiment_id()], filter_string=f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'"
        )
        return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))

    def parent_run_id(self, context: dg.AssetExecutionContext) -> str:
        """The MLflow run of this Dagster run, created by whichever step needs it first.

        Step processes may race to create it; each creator then elects the earliest run with
        the tag and deletes its own if it lost, so all steps converge on one parent.
        """
        client = self.client()
        run = context.run
        existing = self._parent_runs(run.run_id)
        if existing:
            parent = existing[0]
        else:
            created = client.create_run(
                self.experiment_id(),
                run_name=f"{run.job_name}-{run.run_id[:8]}",
                tags={
                    DAGSTER_RUN_TAG: run.run_id,
                    "dagster.run_id": run.run_id,
                    "dagster.job": run.job_name,
                    "dagster.root_run_id": run.root_run_id or run.run_id,
                    "dagster.parent_run_id": run.parent_run_id or "",
                    "dagster.run_url": self.dagster_run_url(run.run_id),
                    "mlflow.source.git.commit": git_commit(),
                    "git_commit": git_commit(),
                    "mlflow.note.content": (
                        f"Dagster run [{run.run_id}]({self.dagster_run_url(run.run_id)}) "
                        f"of job `{run.job_name}`."
                    ),
                },
            )
            parent = self._parent_runs(run.run_id)[0]
            if parent.info.run_id != created.info.run_id:
                client.delete_run(created.info.run_id)
        if parent.info.status != RUNNING:
            client.update_run(parent.info.run_id, status=RUNNING)
        return parent.info.run_id

    def _finish_parent(self, parent_run_id: str) -> None:
        """End the parent when none of its nested runs is still running.

        Every nested run ends itself before calling this, so the last one to end always sees
        all of its siblings ended. The parent ends FAILED if the latest attempt of any asset
        (partition) failed, else FINISHED: an attempt that failed and was retried with
        success does not fail the parent.
        """
        client = self.client()
        children = client.search_runs(
            [self.experiment_id()], filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}'"
        )
        if any(child.info.status == RUNNING for child in children):
            return
        latest: dict[tuple[str, str], Run] = {}
        for child in sorted(children, key=lambda run: run.info.start_time or 0):
            tags = child.data.tags
            latest[(tags.get("dagster.asset_key", ""), tags.get("dagster.partition_key", ""))] = (
                child
            )
        failed = any(child.info.status in (FAILED, KILLED) for child in latest.values())
        end_time = max((child.info.end_time or 0 for child in children), default=None)
        client.set_terminated(
            parent_run_id, status=FAILED if failed else FINISHED, end_time=end_time
        )

    def close_failed_run(self, dagster_run_id: str, reason: str) -> list[str]:
        """Mark the MLflow runs of a failed Dagster run FAILED; return the runs it changed.

        The nested runs close themselves when their asset body fails, but not when a step
        fails outside it (writing its output) or its process is killed: this closes those,
        and the parent. Runs already ended FAILED or KILLED are left as they are.
        """
        client = self.client()
        changed = []
        for parent in self._parent_runs(dagster_run_id):
            children = client.search_runs(
                [self.experiment_id()],
                filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'",
            )
            for run in [*children, parent]:
                if run.info.status in (FAILED, KILLED):
                    continue
                if run is parent or run.info.status == RUNNING:
                    client.set_tag(run.info.run_id, "dagster.failure", reason[:5000])
                    client.set_terminated(run.info.run_id, status=FAILED)
                    changed.append(run.info.run_id)
        return changed

    @contextmanager
    def asset_run(self, context: dg.AssetExecutionContext) -> Iterator[AssetRun]:
        """Open this materialization's nested MLflow run and make it MLflow's active run.

        Inside the block, ``mlflow.log_*`` calls go to the nested run. It ends FINISHED when
        the block succeeds, and FAILED (KILLED if interrupted) when it raises, then the
        parent's status is brought up to date. A transient fault (see ``faults.is_transient``)
        propagates so that the step's ``RetryPolicy`` runs it again, in a new nested run; any
        other error becomes a ``dg.Failure`` that is not retried.
        """
        import mlflow

        mlflow.set_tracking_uri(self.resolved_tracking_uri())
        if self.registry_uri:
            mlflow.set_registry_uri(self.registry_uri)
        client = self.client()
        parent_run_id = self.parent_run_id(context)
        asset_key = context.asset_key
        tags = {
            PARENT_RUN_TAG: parent_run_id,
            "dagster.run_id": context.run.run_id,
            "dagster.job": context.run.job_name,
            "dagster.asset_key": asset_key.to_user_string(),
            "dagster.code_version": context.assets_def.code_versions_by_key.get(asset_key) or "",
            "dagster.run_url": self.dagster_run_url(context.run.run_id),
            "dagster.attempt": str(context.retry_number + 1),
            "mlflow.source.git.commit": git_commit(),
            "git_commit": git_commit(),
        }
        run_name = asset_key.to_user_string()
        if context.has_partition_key:
            tags["dagster.partition_key"] = context.partition_key
            run_name = f"{run_name}[{context.partition_key}]"
        nested = client.create_run(self.experiment_id(), run_name=run_name, tags=tags)
        run_id = nested.info.run_id
        mlflow.start_run(run_id=run_id, log_system_metrics=False)
        status = FAILED
        try:
            yield AssetRun(
                run_id=run_id,
                parent_run_id=parent_run_id,
                experiment_id=self.experiment_id(),
                url=self.run_url(self.experiment_id(), run_id),
            )
            status = FINISHED
        except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError):
            status = KILLED
            raise
        except (dg.Failure, dg.RetryRequested):
            raise
        except Exception as error:
            if is_transient(error):
                raise  # the step's RetryPolicy runs it again
            # Retrying cannot fix bad data, bad configuration or a bug: fail once, loudly.
            raise dg.Failure(
                description=f"{type(error).__name__}: {error}", allow_retries=False
            ) from error
        finally:
            mlflow.end_run(status=status)
            self._finish_parent(parent_run_id)
