"""Metadata helpers shared by the assets."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd

OWNERS = ["team:mlops"]


def table_metadata(frame: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """Row count and column schema of a frame, in Dagster's standard metadata keys."""
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(name=str(name), type=str(dtype)) for name, dtype in frame.dtypes.items()
        ]
    )
    return {
        "dagster/row_count": dg.MetadataValue.int(len(frame)),
        "dagster/column_schema": dg.MetadataValue.table_schema(schema),
    }


def png_markdown(title: str, png: bytes) -> dg.MetadataValue:
    """A PNG image rendered inline in the Dagster UI's metadata panel."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


MLFLOW_DATASETS = "mlflow_datasets"
"""The metadata entry listing the MLflow dataset inputs a materialization's run logged."""


def datasets_metadata(rows: Sequence[Mapping[str, str | int]]) -> dict[str, dg.MetadataValue]:
    """The partitions read, as the MLflow run's dataset inputs, for the materialization.

    Name, context, digest (the partition's data version), rows and source, one row each
    (:func:`~mlops_assets.tracking.datasets.dataset_table`).
    """
    columns = [
        dg.TableColumn(name, type="int" if name == "rows" else "string")
        for name in ("dataset", "context", "digest", "rows", "source")
    ]
    return {
        MLFLOW_DATASETS: dg.MetadataValue.table(
            records=[dg.TableRecord(dict(row)) for row in rows],
            schema=dg.TableSchema(columns=columns),
        )
    }
