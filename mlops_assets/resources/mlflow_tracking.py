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

Outages: MLflow's HTTP client retries a failed request by itself, by default 7 times over
about four minutes with a 120 s timeout per try, which Dagster's step retries would multiply
into tens of minutes. The resource caps it (the ``http_*`` fields, applied to the step
process) so that a request fails within seconds and the step's ``RetryPolicy`` does the
waiting, with backoff and jitter (``defs/policies.py`` adds up the worst case).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

from mlops_assets.runtime import gc_policy, settings
from mlops_assets.tracking.faults import is_transient, root_cause
from mlops_assets.tracking.provenance import git_commit

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

# dagster-mlflow's tag for "the MLflow run of this Dagster run".
DAGSTER_RUN_TAG = "dagster_run_id"
PARENT_RUN_TAG = "mlflow.parentRunId"
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
StepContext = dg.AssetExecutionContext | dg.OpExecutionContext


def log_files(files: dict[str, bytes], artifact_path: str) -> None:
    """Log in-memory files to the active MLflow run under ``artifact_path``, in one upload."""
    import tempfile

    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        for name, payload in files.items():
            (Path(scratch) / name).write_bytes(payload)
        mlflow.log_artifacts(scratch, artifact_path)


@contextmanager
def _file_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive advisory lock between processes on this machine.

    ``on_wait`` is called once if another process holds it. The OS releases it when its
    holder dies.
    """
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
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
        from mlops_assets.tracking.registry import current_version

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
        with _file_lock(
            settings.data_dir() / "locks" / f"registry-{digest}.lock",
            on_wait=lambda: context.log.info(f"{what}: waiting (another run holds it)"),
        ):
            context.log.info(f"{what}: held")
            try:
                yield
            finally:
                context.log.info(f"{what}: released")

    def _close_earlier_attempts(self, parent_run_id: str, tags: dict[str, str]) -> None:
        """End FAILED the nested runs of this asset that earlier attempts could not end."""
        client = self.client()
        left_open = client.search_runs(
            [self.experiment_id()],
            filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}' "
            f"and tags.`dagster.asset_key` = '{tags['dagster.asset_key']}' "
            f"and attributes.status = '{RUNNING}'",
        )
        for run in left_open:
            if run.data.tags.get("dagster.partition_key") == tags.get("dagster.partition_key"):
                client.set_tag(
                    run.info.run_id,
                    "dagster.failure",
                    "MLflow was unreachable when this attempt failed; ended by the next attempt",
                )
                client.set_terminated(run.info.run_id, status=FAILED)

    def _end_after_error(
        self, context: StepContext, parent_run_id: str, status: str, error: BaseException
    ) -> None:
        """End the active nested run after its block raised ``error``.

        When MLflow itself is what failed, closing is tried once, without the client's
        retries: waiting here would only delay the step's retry, whose attempt ends the run.
        """
        import mlflow

        if not is_transient(error):
            mlflow.end_run(status=status)
            self._finish_parent(parent_run_id)
            return
        run = mlflow.active_run()
        try:
            with _environment({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}):
                mlflow.end_run(status=status)
                self._finish_parent(parent_run_id)
        except Exception as close_error:
            if not is_transient(close_error):
                raise
            context.log.warning(
                f"MLflow run {run.info.run_id if run else '?'} left RUNNING "
                f"({root_cause(close_error)}): the next attempt or mlflow_run_failure_sensor "
                "ends it"
            )

    @contextmanager
    def asset_run(self, context: dg.AssetExecutionContext) -> Iterator[AssetRun]:
        """Open this materialization's nested MLflow run and make it MLflow's active run.

        Inside the block, ``mlflow.log_*`` calls go to the nested run. It ends FINISHED when
        the block succeeds, and FAILED (KILLED if interrupted) when it raises, then the
        parent's status is brought up to date. Faults are classified by
        :meth:`classify_faults`: transient ones are retried by the step's ``RetryPolicy``, in
        a new nested run (which first ends the runs earlier attempts could not end).
        """
        import mlflow

        with self.classify_faults(context):
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
                "dagster.code_version": context.assets_def.code_versions_by_key.get(asset_key)
                or "",
                "dagster.run_url": self.dagster_run_url(context.run.run_id),
                "dagster.attempt": str(context.retry_number + 1),
                "mlflow.source.git.commit": git_commit(),
                "git_commit": git_commit(),
            }
            run_name = asset_key.to_user_string()
            if context.has_partition_key:
                tags["dagster.partition_key"] = context.partition_key
                run_name = f"{run_name}[{context.partition_key}]"
            elif context.has_partition_key_range:
                # A batch of months: one MLflow run, its metrics one step per month.
                keys = context.partition_key_range
                tags["dagster.partition_range"] = f"{keys.start}...{keys.end}"
                run_name = f"{run_name}[{keys.start}...{keys.end}]"
            if context.retry_number:
                self._close_earlier_attempts(parent_run_id, tags)
            nested = client.create_run(self.experiment_id(), run_name=run_name, tags=tags)
            run_id = nested.info.run_id
            mlflow.start_run(run_id=run_id, log_system_metrics=False)
            try:
                yield AssetRun(
                    run_id=run_id,
                    parent_run_id=parent_run_id,
                    experiment_id=self.experiment_id(),
                    url=self.run_url(self.experiment_id(), run_id),
                )
            except BaseException as error:
                interrupted = isinstance(
                    error, KeyboardInterrupt | dg.DagsterExecutionInterruptedError
                )
                self._end_after_error(
                    context, parent_run_id, KILLED if interrupted else FAILED, error
                )
                raise
            mlflow.end_run(status=FINISHED)
            self._finish_parent(parent_run_id)


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
