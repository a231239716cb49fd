"""What an asset logs to its MLflow run, through a handle: assets make no ``mlflow.*`` calls.

The handle names its run explicitly wherever MLflow lets it (params, metrics, tags,
artifacts), so it logs to its own run whatever else is active. Logging a model goes to the
active run (MLflow's only way), which the handle's owner made it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities import Dataset
    from mlflow.models.model import ModelInfo
    from sklearn.pipeline import Pipeline

    from mlops_assets.tracking.datasets import PartitionDataset


def use_stores(tracking_uri: str, registry_uri: str | None) -> None:
    """Point MLflow's fluent API (model logging and registration) at these stores."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    if registry_uri:
        mlflow.set_registry_uri(registry_uri)


def activate(run_id: str) -> None:
    """Make the existing run ``run_id`` MLflow's active run (and RUNNING).

    A run another library left active in this process (dagster-mlflow's resource keeps its
    run active) stays below it, active again once this one ends.
    """
    import mlflow

    mlflow.start_run(
        run_id=run_id, nested=mlflow.active_run() is not None, log_system_metrics=False
    )


def deactivate(status: str) -> None:
    """End the active run with ``status``; the run below it, if any, becomes active again."""
    import mlflow

    mlflow.end_run(status=status)


@dataclass(frozen=True)
class RunHandle:
    """One MLflow run, to log to: params, metrics, tags, artifacts, models."""

    run_id: str
    experiment_id: str

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (MLflow sends them in batches of 100)."""
        import mlflow

        mlflow.log_params(dict(params), run_id=self.run_id)

    def log_metrics(
        self,
        metrics: Mapping[str, float],
        step: int | None = None,
        model_id: str | None = None,
        dataset: PartitionDataset | None = None,
    ) -> None:
        """Log metrics (at ``step``, linked to the LoggedModel ``model_id`` and ``dataset``).

        Each of ``step``, ``model_id`` and ``dataset`` (what they were measured on) is optional.
        """
        import mlflow

        mlflow.log_metrics(
            dict(metrics),
            step=step,
            run_id=self.run_id,
            model_id=model_id,
            dataset=dataset.entity() if dataset else None,
        )

    def log_datasets(self, inputs: Mapping[PartitionDataset, str]) -> None:
        """Log the partitions read as the run's dataset inputs, each with its context."""
        self.log_dataset_entities(
            [(dataset.entity(), context) for dataset, context in inputs.items()]
        )

    def log_dataset_entities(self, inputs: Sequence[tuple[Dataset, str]]) -> None:
        """Log MLflow datasets as the run's inputs; one used twice gets both contexts."""
        from mlflow import MlflowClient
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        from mlops_assets.tracking.datasets import merged_contexts

        MlflowClient().log_inputs(
            self.run_id,
            datasets=[
                DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT, context)])
                for dataset, context in merged_contexts(inputs)
            ],
        )

    @staticmethod
    def datasets_of(run_id: str, contexts: Collection[str]) -> list[Dataset]:
        """The dataset inputs the run ``run_id`` logged with one of ``contexts``."""
        from mlflow import MlflowClient
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        inputs = MlflowClient().get_run(run_id).inputs
        return [
            entry.dataset
            for entry in (inputs.dataset_inputs if inputs else [])
            if any(t.key == MLFLOW_DATASET_CONTEXT and t.value in contexts for t in entry.tags)
        ]

    def log_candidate_model(
        self,
        name: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        dataset: PartitionDataset | None,
    ) -> str:
        """Log a candidate compared (not kept) as a LoggedModel with no artifacts; its id.

        Its params, and its ``metrics`` on ``dataset``: the experiment's Models view lists it.
        """
        from mlflow import MlflowClient

        client = MlflowClient()
        model = client.create_logged_model(
            self.experiment_id,
            name=name,
            source_run_id=self.run_id,
            params={key: str(value) for key, value in params.items()},
            tags={"role": "candidate"},
            model_type="candidate",
        )
        self.log_metrics(metrics, model_id=model.model_id, dataset=dataset)
        client.finalize_logged_model(model.model_id, "READY")
        return str(model.model_id)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (values are stored as strings)."""
        from mlflow import MlflowClient
        from mlflow.entities import RunTag

        MlflowClient().log_batch(
            self.run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()]
        )

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag."""
        self.set_tags({key: value})

    def log_dict(self, dictionary: dict[str, Any], artifact_file: str) -> None:
        """Log a dictionary as a JSON (or YAML, by the file's extension) artifact."""
        import mlflow

        mlflow.log_dict(dictionary, artifact_file, run_id=self.run_id)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Log text as an artifact."""
        import mlflow

        mlflow.log_text(text, artifact_file, run_id=self.run_id)

    def log_table(self, table: pd.DataFrame, artifact_file: str) -> None:
        """Log a table as a JSON artifact that the MLflow UI shows as a table."""
        import mlflow

        mlflow.log_table(table, artifact_file=artifact_file, run_id=self.run_id)

    def log_files(self, files: Mapping[str, bytes], artifact_path: str) -> None:
        """Log in-memory files (figures, reports) under ``artifact_path``, in one upload."""
        import tempfile
        from pathlib import Path

        import mlflow

        with tempfile.TemporaryDirectory() as scratch:
            for name, payload in files.items():
                (Path(scratch) / name).write_bytes(payload)
            mlflow.log_artifacts(scratch, artifact_path, run_id=self.run_id)

    def log_model(
        self, pipeline: Pipeline, input_example: pd.DataFrame, params: Mapping[str, Any]
    ) -> ModelInfo:
        """Log the fitted pipeline to this run as the pyfunc served (``ml.packaging``).

        It is a LoggedModel with ``params``.
        """
        import mlflow

        from mlops_assets.ml.packaging import log_pyfunc_model

        active = mlflow.active_run()
        if active is None or active.info.run_id != self.run_id:
            raise RuntimeError(f"MLflow run {self.run_id} is not the active run: cannot log to it")
        return log_pyfunc_model(pipeline, input_example, params)

    @contextmanager
    def child(self, run_name: str, tags: Mapping[str, str]) -> Iterator[RunHandle]:
        """A run nested under this one (active while the block runs), ended when it ends.

        It ends FINISHED, or FAILED if the block raises.
        """
        import mlflow

        with mlflow.start_run(
            experiment_id=self.experiment_id,
            run_name=run_name,
            parent_run_id=self.run_id,
            nested=True,
            tags=dict(tags),
        ) as run:
            yield RunHandle(run.info.run_id, self.experiment_id)

    @staticmethod
    def load_model(model_uri: str) -> Any:
        """Load a logged or registered model (``models:/``, ``runs:/``) as a pyfunc.

        Typed ``Any``: MLflow types ``predict``'s output as any of its output types, where
        this project's pyfunc always returns a DataFrame (``ml/pyfunc_model.py``). Through a
        tracking server, MLflow downloads the model's files into a temporary folder it never
        removes (a copy in ``/tmp`` per scoring, drift or evaluation step): they go to one
        removed once the model is in memory.
        """
        import tempfile

        import mlflow

        with tempfile.TemporaryDirectory(prefix="mlops-model-") as scratch:
            return mlflow.pyfunc.load_model(model_uri, dst_path=scratch)

    @staticmethod
    def load_text(artifact_uri: str) -> str:
        """The text of an artifact (``runs:/<run id>/<path>``)."""
        import mlflow

        return mlflow.artifacts.load_text(artifact_uri)

    @staticmethod
    def register_model(model_uri: str, name: str, tags: Mapping[str, str]) -> str:
        """Register ``model_uri`` as a new version of ``name``, with ``tags``; its version."""
        import mlflow

        return str(mlflow.register_model(model_uri, name, tags=dict(tags)).version)


@contextmanager
def standalone_run(
    experiment_id: str, run_name: str, tags: Mapping[str, str]
) -> Iterator[RunHandle]:
    """A new top-level run, active while the block runs; ended FINISHED, or FAILED if it raises."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags)) as run:
        yield RunHandle(run.info.run_id, experiment_id)
