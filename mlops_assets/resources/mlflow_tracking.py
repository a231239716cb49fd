"""MLflow tracking injected into assets: one parent run per Dagster run, one nested run per asset.

An asset opens its run with ``with mlflow_tracking.asset_run(context) as run:`` and logs
through the handle (``run.log_params``, ``run.log_metrics``, ``run.log_files``,
``run.log_model``, ``run.child`` for nested runs...): assets make no ``mlflow.*`` call. The
bookkeeping of the parent and nested runs is plain functions over an ``MlflowClient``
(``tracking/runs.py``), the handle is ``tracking/handle.py``; this resource holds the
configuration, the client, the links between the two UIs and the lifecycle around an asset.

What is kept from dagster-mlflow: its convention that the MLflow run of a Dagster run is the
one tagged ``dagster_run_id`` with the run's id. The same tag is set and searched for here,
so in one Dagster run an op using ``dagster_mlflow.mlflow_tracking`` and an asset using this
resource share one parent run, whichever comes first
(``mlops_assets_tests/resources/test_dagster_mlflow_interop.py``). No code of it is used:
its lookup (``MlFlow._get_current_run_id``) is a method of the resource object, which starts
an MLflow run and sets the experiment process-wide when built, and returns the newest run
with the tag where the race between step processes needs the earliest; its ``log_params``
chunking is what ``MlflowClient.log_batch`` does itself; and importing it imports ``mlflow``,
which must stay out of the code location's import time.

What is replaced, and why: ``dagster_mlflow.mlflow_tracking`` is a legacy untyped
``@resource`` that copies all of ``mlflow`` onto a class through a metaclass and keeps one
process-global active run; its ``end_mlflow_on_run_finished`` hook ends the MLflow run after
the topologically last op *of the job*, so with an asset selection, a failure or steps in
several processes the run is closed early or never (dagster-io/dagster#21872). Here each
asset opens its own nested run and closes it FINISHED or FAILED when it ends; the parent's
status is recomputed from its children every time one of them ends, so the parent ends
FINISHED or FAILED whatever the executor, the selection, or re-execution from failure.

Outages: MLflow's HTTP client retries a failed request by itself, by default 7 times over
about four minutes with a 120 s timeout per try, which Dagster's step retries would multiply
into tens of minutes. The resource caps it (the ``http_*`` fields, applied to the step
process) so that a request fails within seconds and the step's ``RetryPolicy`` does the
waiting, with backoff and jitter (``defs/shared/policies.py`` adds up the worst case).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

from mlops_assets.runtime import gc_policy, settings
from mlops_assets.runtime.locks import file_lock
from mlops_assets.tracking import handle, runs
from mlops_assets.tracking.faults import is_transient, root_cause
from mlops_assets.tracking.handle import RunHandle
from mlops_assets.tracking.provenance import git_commit
from mlops_assets.tracking.runs import DAGSTER_RUN_TAG, PARENT_RUN_TAG

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["DAGSTER_RUN_TAG", "PARENT_RUN_TAG", "AssetRun", "MlflowTracking", "RunHandle"]

StepContext = dg.AssetExecutionContext | dg.OpExecutionContext


@dataclass(frozen=True)
class AssetRun(RunHandle):
    """The nested MLflow run of one asset materialization (active while the block runs)."""

    parent_run_id: str
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

    http_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of one MLflow HTTP request before it fails "
        "(MLFLOW_HTTP_REQUEST_MAX_RETRIES; MLflow's default, 7, waits ~4 min per request). "
        "Longer outages are the step RetryPolicy's job.",
    )
    http_backoff_factor: int = Field(
        default=1,
        ge=0,
        le=120,
        description="Wait before the n-th retry of a request: 0 s, then factor * 2**(n-1) s "
        "(MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR).",
    )
    http_backoff_jitter: float = Field(
        default=1.0,
        ge=0,
        description="Random seconds (up to) added to each of those waits "
        "(MLFLOW_HTTP_REQUEST_BACKOFF_JITTER).",
    )
    http_timeout_seconds: int = Field(
        default=15,
        ge=1,
        description="Timeout of each try of a request, to connect and to read "
        "(MLFLOW_HTTP_REQUEST_TIMEOUT; MLflow's default is 120).",
    )

    _client: MlflowClient | None = PrivateAttr(default=None)
    _experiment_id: str | None = PrivateAttr(default=None)

    def http_environment(self) -> dict[str, str]:
        """The MLflow client settings this resource imposes, as MLflow reads them."""
        return {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.http_max_retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(self.http_backoff_factor),
            "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": str(self.http_backoff_jitter),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.http_timeout_seconds),
        }

    def request_wait_seconds(self, hung: bool = False) -> float:
        """Longest time one MLflow request takes to fail, its retries included.

        urllib3 (under MLflow's client) retries the first failure at once and waits
        ``factor * 2**(n-1)`` s plus up to ``jitter`` s (at most 120 s) after the n-th.

        Args:
            hung: False for a server that is down (each try is refused at once); True for one
                that accepts connections but never answers (each try times out).
        """
        sleeps = sum(
            min(120.0, self.http_backoff_factor * 2 ** (n - 1) + self.http_backoff_jitter)
            for n in range(2, self.http_max_retries + 1)
        )
        tries = self.http_max_retries + 1
        return sleeps + (tries * self.http_timeout_seconds if hung else 0)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Import MLflow (collector paused) and cap its HTTP retries in this process.

        MLflow reads these settings from the environment at every request and has no other
        way to take them, so they are set there, for the process the run executes in (a run
        launched by the daemon or the UI has its own). They are not restored afterwards:
        a teardown would make this a generator resource, which sensors and tests then have
        to open as a context manager; the next run's resource sets its own.
        """
        with gc_policy.heavy_imports():
            import mlflow  # noqa: F401
        os.environ.update(self.http_environment())

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
                file_lock(Path(uri.removeprefix("sqlite:///") + ".init.lock"))
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

    def experiment_id(self) -> str:
        """The experiment's id, created on first use (safe when several processes race)."""
        if self._experiment_id is None:
            location = self.artifact_location
            if location is None and not self.resolved_tracking_uri().startswith(
                ("http://", "https://")
            ):
                location = settings.default_artifact_location()
            self._experiment_id = runs.experiment_id(self.client(), self.experiment_name, location)
        return self._experiment_id

    @contextmanager
    def classify_faults(self, context: StepContext) -> Iterator[None]:
        """Let the step's RetryPolicy retry transient MLflow faults; fail clearly on the rest.

        A transient fault (see ``faults.is_transient``: the server down, a connection reset, a
        locked database) propagates, so that the RetryPolicy runs the step again after its
        backoff; on the last attempt it becomes a ``dg.Failure`` naming the tracking URI and
        the attempts, instead of the MLflow client's traceback. Any other error (bad data,
        bad configuration, a bug) becomes a ``dg.Failure`` that is not retried.
        """
        try:
            yield
        except (dg.Failure, dg.RetryRequested):
            raise
        except Exception as error:
            if not is_transient(error):
                raise dg.Failure(
                    description=f"{type(error).__name__}: {error}", allow_retries=False
                ) from error
            attempt, attempts = context.retry_number + 1, _attempts(context)
            uri, cause = self.resolved_tracking_uri(), root_cause(error)
            if attempt < attempts:
                context.log.warning(
                    f"MLflow at {uri} unreachable on attempt {attempt} of {attempts} "
                    f"({cause}): the step is retried"
                )
                raise
            raise dg.Failure(
                description=(
                    f"MLflow at {uri} was unreachable after {attempts} attempts ({cause}). "
                    "Start the tracking server (or restore the network to it), then "
                    "re-execute this run from failure: what it registered before the outage "
                    "is reused, not registered twice."
                ),
                metadata={
                    "tracking_uri": dg.MetadataValue.text(uri),
                    "attempts": dg.MetadataValue.int(attempts),
                    "error": dg.MetadataValue.text(cause),
                },
                allow_retries=False,
            ) from error

    @contextmanager
    def registry_lock(self, context: StepContext) -> Iterator[None]:
        """Hold this machine's lock on the registered model while the block moves its aliases.

        The block reads ``@champion``, decides and moves the aliases under it. The registry
        steps are also in the ``mlflow_registry`` concurrency pool, limited to one step at a
        time, but Dagster's claim of a pool slot is not atomic on its SQLite storage: two
        steps claiming in the same instant can both get the one slot (``test_outage.py`` saw
        it). This lock, a file under the data directory named after the registry and the
        model, makes the registry decisions of this machine's runs one at a time whatever
        happens; the OS releases it when its holder dies. The step log shows it: waiting,
        held, released.
        """
        registry = self.registry_uri or self.resolved_tracking_uri()
        digest = hashlib.sha256(f"{registry}\n{self.model_name}".encode()).hexdigest()[:16]
        what = f"registry lock of {self.model_name}"
        with file_lock(
            settings.data_dir() / "locks" / f"registry-{digest}.lock",
            on_wait=lambda: context.log.info(f"{what}: waiting (another run holds it)"),
        ):
            context.log.info(f"{what}: held")
            try:
                yield
            finally:
                context.log.info(f"{what}: released")

    def parent_run_id(self, context: StepContext) -> str:
        """The MLflow run of this Dagster run, created by whichever step needs it first."""
        run = context.run
        url = self.dagster_run_url(run.run_id)
        return runs.elect_parent(
            self.client(),
            self.experiment_id(),
            run.run_id,
            run_name=f"{run.job_name}-{run.run_id[:8]}",
            tags={
                "dagster.run_id": run.run_id,
                "dagster.job": run.job_name,
                "dagster.root_run_id": run.root_run_id or run.run_id,
                "dagster.parent_run_id": run.parent_run_id or "",
                "dagster.run_url": url,
                "mlflow.source.git.commit": git_commit(),
                "git_commit": git_commit(),
                "mlflow.note.content": (
                    f"Dagster run [{run.run_id}]({url}) of job `{run.job_name}`."
                ),
            },
        )

    def close_failed_run(self, dagster_run_id: str, reason: str) -> list[str]:
        """Mark the MLflow runs of a failed Dagster run FAILED; return the runs it changed.

        See ``tracking.runs.close_failed_run``: what a step failing outside its asset body,
        or a killed process, left RUNNING is ended FAILED, and the parent with it.
        """
        return runs.close_failed_run(self.client(), self.experiment_id(), dagster_run_id, reason)

    @contextmanager
    def standalone_run(self, run_name: str, tags: Mapping[str, str]) -> Iterator[RunHandle]:
        """A top-level MLflow run of this experiment, outside any Dagster run's parent."""
        handle.use_stores(self.resolved_tracking_uri(), self.registry_uri)
        with handle.standalone_run(self.experiment_id(), run_name, tags) as run:
            yield run

    def _end_after_error(
        self, context: StepContext, run: AssetRun, status: str, error: BaseException
    ) -> None:
        """End the active nested run after its block raised ``error``.

        When MLflow itself is what failed, closing is tried once, without the client's
        retries: waiting here would only delay the step's retry, whose attempt ends the run.
        """
        if not is_transient(error):
            handle.deactivate(status)
            runs.finish_parent(self.client(), run.experiment_id, run.parent_run_id)
            return
        try:
            with _environment({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}):
                handle.deactivate(status)
                runs.finish_parent(self.client(), run.experiment_id, run.parent_run_id)
        except Exception as close_error:
            if not is_transient(close_error):
                raise
            context.log.warning(
                f"MLflow run {run.run_id} left RUNNING ({root_cause(close_error)}): the next "
                "attempt or mlflow_run_failure_sensor ends it"
            )

    @contextmanager
    def asset_run(self, context: dg.AssetExecutionContext) -> Iterator[AssetRun]:
        """Open this materialization's nested MLflow run, active while the block runs.

        The asset logs through the handle it yields. The run ends FINISHED when the block
        succeeds, and FAILED (KILLED if interrupted) when it raises, then the parent's status
        is brought up to date. Faults are classified by :meth:`classify_faults`: transient
        ones are retried by the step's ``RetryPolicy``, in a new nested run (which first ends
        the runs earlier attempts could not end).
        """
        with self.classify_faults(context):
            handle.use_stores(self.resolved_tracking_uri(), self.registry_uri)
            client, experiment_id = self.client(), self.experiment_id()
            parent_run_id = self.parent_run_id(context)
            asset_key = context.asset_key
            tags = {
                PARENT_RUN_TAG: parent_run_id,
                "dagster.run_id": context.run.run_id,
                "dagster.job": context.run.job_name,
                runs.ASSET_KEY_TAG: asset_key.to_user_string(),
                "dagster.code_version": context.assets_def.code_versions_by_key.get(asset_key)
                or "",
                "dagster.run_url": self.dagster_run_url(context.run.run_id),
                "dagster.attempt": str(context.retry_number + 1),
                "mlflow.source.git.commit": git_commit(),
                "git_commit": git_commit(),
            }
            run_name = asset_key.to_user_string()
            if context.has_partition_key:
                tags[runs.PARTITION_KEY_TAG] = context.partition_key
                run_name = f"{run_name}[{context.partition_key}]"
            elif context.has_partition_key_range:
                # A batch of months: one MLflow run, its metrics one step per month.
                keys = context.partition_key_range
                tags["dagster.partition_range"] = f"{keys.start}...{keys.end}"
                run_name = f"{run_name}[{keys.start}...{keys.end}]"
            if context.retry_number:
                runs.close_earlier_attempts(
                    client,
                    experiment_id,
                    parent_run_id,
                    tags[runs.ASSET_KEY_TAG],
                    tags.get(runs.PARTITION_KEY_TAG),
                )
            run_id = client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
            run = AssetRun(
                run_id=run_id,
                experiment_id=experiment_id,
                parent_run_id=parent_run_id,
                url=self.run_url(experiment_id, run_id),
            )
            handle.activate(run_id)
            try:
                yield run
            except BaseException as error:
                interrupted = isinstance(
                    error, KeyboardInterrupt | dg.DagsterExecutionInterruptedError
                )
                self._end_after_error(
                    context, run, runs.KILLED if interrupted else runs.FAILED, error
                )
                raise
            handle.deactivate(runs.FINISHED)
            runs.finish_parent(client, experiment_id, parent_run_id)


def _attempts(context: StepContext) -> int:
    """How many times the step runs at most: once, plus its retry policy's retries."""
    op_context = context.op_execution_context
    policy = op_context.job_def.get_retry_policy_for_handle(op_context.node_handle)
    return 1 + (policy.max_retries if policy else 0)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
