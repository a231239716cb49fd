"""The lake partitions a run reads, as MLflow datasets digested by their Dagster data versions.

MLflow's "Datasets" column and a LoggedModel's metrics name a dataset by its name and digest.
Here a dataset is one stored partition of an asset (``flight_features[2013-03]``): its
digest is the partition's Dagster data version, its source the file where the lake stores
it, its schema and row count read from that file's footer. The Dagster materialization that
logged it lists the same digests, so either UI leads to the other.

MLflow caps a digest at 36 characters (``MAX_DATASET_DIGEST_SIZE``): the data versions of
the assets read here are 32 hexadecimal characters (``defs.shared.lineage.frame_version``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mlflow.entities import Dataset

DatasetContext = Literal["training", "validation", "holdout", "scoring", "drift reference"]
"""What the run did with the data (MLflow's ``mlflow.data.context`` input tag)."""

MAX_DIGEST_LENGTH = 36
"""MLflow's longest dataset digest (``mlflow.utils.validation.MAX_DATASET_DIGEST_SIZE``)."""

_MLFLOW_TYPES = {
    "bool": "boolean",
    "int8": "integer",
    "int16": "integer",
    "int32": "integer",
    "int64": "long",
    "uint8": "integer",
    "uint16": "integer",
    "uint32": "long",
    "float": "float",
    "double": "double",
    "string": "string",
    "large_string": "string",
    "binary": "binary",
}


def mlflow_type(arrow_type: str) -> str:
    """The MLflow column type of an Arrow type as Arrow prints it (``int64``, ``timestamp[ns]``).

    Raises:
        ValueError: For a type with no MLflow column type (named).
    """
    if arrow_type.startswith("timestamp") or arrow_type.startswith("date"):
        return "datetime"
    if arrow_type.startswith("dictionary<values=string"):
        return "string"
    if arrow_type not in _MLFLOW_TYPES:
        raise ValueError(f"Arrow type {arrow_type!r} has no MLflow column type")
    return _MLFLOW_TYPES[arrow_type]


@dataclass(frozen=True)
class PartitionDataset:
    """One stored partition of an asset, as an MLflow dataset."""

    asset: str
    partition: str
    digest: str
    source: str
    rows: int
    columns: tuple[tuple[str, str], ...]
    """Each column's name and Arrow type."""

    def __post_init__(self) -> None:
        if not self.digest or len(self.digest) > MAX_DIGEST_LENGTH:
            raise ValueError(
                f"{self.name}: data version {self.digest!r} cannot be an MLflow dataset digest "
                f"(1 to {MAX_DIGEST_LENGTH} characters); materialize {self.asset} for "
                f"{self.partition} again to give it a current data version"
            )

    @property
    def name(self) -> str:
        """``asset[partition]``, the dataset's name in MLflow."""
        return f"{self.asset}[{self.partition}]"

    def schema_json(self) -> str:
        """The schema as MLflow's pandas datasets write it (``mlflow_colspec``)."""
        colspecs = [
            {"type": mlflow_type(arrow_type), "name": name, "required": False}
            for name, arrow_type in self.columns
        ]
        return json.dumps({"mlflow_colspec": colspecs})

    def entity(self) -> Dataset:
        """The MLflow dataset entity (name, digest, source, schema, row count)."""
        from mlflow.entities import Dataset

        return Dataset(
            name=self.name,
            digest=self.digest,
            source_type="local" if "://" not in self.source else self.source.split("://")[0],
            source=json.dumps({"uri": self.source}),
            schema=self.schema_json(),
            profile=json.dumps(
                {"num_rows": self.rows, "num_elements": self.rows * len(self.columns)}
            ),
        )

    def as_row(self, context: str) -> dict[str, str | int]:
        """The dataset as a row of the Dagster materialization's ``mlflow_datasets`` table."""
        return dataset_row(self.entity(), context)


def contexts_of_months(
    training: Sequence[str], validation: str | None, holdout: str | None
) -> dict[str, DatasetContext]:
    """Each month's context in a training run: the validation month is not also training."""
    contexts: dict[str, DatasetContext] = dict.fromkeys(training, "training")
    if validation is not None:
        contexts[validation] = "validation"
    if holdout is not None:
        contexts[holdout] = "holdout"
    return contexts


def dataset_table(inputs: Mapping[PartitionDataset, str]) -> list[dict[str, str | int]]:
    """The inputs as rows, in partition order."""
    return [
        dataset.as_row(context)
        for dataset, context in sorted(inputs.items(), key=lambda item: item[0].partition)
    ]


def dataset_row(dataset: Dataset, context: str) -> dict[str, str | int]:
    """An MLflow dataset entity as a row of the ``mlflow_datasets`` table.

    The entity is one :meth:`PartitionDataset.entity` wrote (its source and profile).
    """
    return {
        "dataset": dataset.name,
        "context": context,
        "digest": dataset.digest,
        "rows": int(json.loads(str(dataset.profile))["num_rows"]),
        "source": str(json.loads(dataset.source)["uri"]),
    }


def merged_contexts(pairs: Iterable[tuple[Dataset, str]]) -> list[tuple[Dataset, str]]:
    """One entry per dataset (name and digest), its contexts joined in order of appearance.

    A run records a dataset once: a month the drift run both scores and finds in its
    reference is ``scoring, drift reference``.
    """
    merged: dict[tuple[str, str], tuple[Dataset, list[str]]] = {}
    for dataset, context in pairs:
        _, contexts = merged.setdefault((dataset.name, dataset.digest), (dataset, []))
        if context not in contexts:
            contexts.append(context)
    return [(dataset, ", ".join(contexts)) for dataset, contexts in merged.values()]
