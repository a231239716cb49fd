"""The stored tables as Dagster types, loaded without pandas or pandera.

Each table's type is the one dagster-pandera builds from its pandera schema
(:mod:`mlops_assets.ml.schemas`): the UI shows the declared columns, dtypes and checks, and
every value an asset stores is validated. Only the validation needs pandera, and it runs in
the step, where pandas is loaded anyway. What the UI needs when the code location loads (the
column schemas) is read from ``table_schemas.json``, which ``mlops-assets table-schemas``
writes from those same pandera schemas, the way dagster-dbt reads a prepared manifest: the
webserver, the daemon, every sensor tick and every step load the code location, and
importing pandera (with pandas and pyarrow) cost each of them ~0.7 s. A test fails when the
file no longer matches the schemas.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    from pandas import DataFrame
else:
    # Dagster resolves asset functions' annotations when it loads them, so a pandas
    # annotation would import pandas there. At run time a frame annotation means "no check"
    # (each table's output type below does the checking); type checkers see the DataFrame.
    DataFrame = Any

MonthFrames = dict[str, DataFrame]
"""A month-partitioned table in a step: a frame per month of the step's batch."""

__all__ = ["SNAPSHOT", "DataFrame", "MonthFrames", "column_schemas", "table_type"]

SNAPSHOT = Path(__file__).with_name("table_schemas.json")
"""Each stored table's description and column schema, as dagster-pandera renders them."""


def column_schemas() -> dict[str, dict[str, Any]]:
    """Each table's description and column schema, freshly built by dagster-pandera.

    What ``mlops-assets table-schemas`` writes to :data:`SNAPSHOT` (imports pandera).
    """
    from mlops_assets.ml.schemas import TABLES

    snapshot: dict[str, dict[str, Any]] = {}
    for name in sorted(TABLES):
        built = _pandera_type(name)
        columns = built.metadata["schema"]
        if not isinstance(columns, dg.TableSchemaMetadataValue):
            raise TypeError(f"dagster-pandera gave {name} no column schema: {columns!r}")
        snapshot[name] = {
            "description": built.description,
            "schema": json.loads(dg.serialize_value(columns.schema)),
        }
    return snapshot


@functools.cache
def _pandera_type(name: str) -> dg.DagsterType:
    from dagster_pandera import pandera_schema_to_dagster_type

    from mlops_assets.ml.schemas import TABLES

    with warnings.catch_warnings():
        # dagster-pandera's converter is labelled beta (1.13.27); it is the documented way.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return pandera_schema_to_dagster_type(TABLES[name])


@functools.cache
def _snapshot() -> dict[str, dict[str, Any]]:
    stored: dict[str, dict[str, Any]] = json.loads(SNAPSHOT.read_text())
    return stored


def table_type(name: str) -> dg.DagsterType:
    """The Dagster type of a stored table: its columns for the UI, pandera's check of its values.

    Raises:
        KeyError: When :data:`SNAPSHOT` has no such table (run ``mlops-assets table-schemas``).
    """
    stored = _snapshot().get(name)
    if stored is None:
        raise KeyError(f"{SNAPSHOT} has no table {name!r}: run `mlops-assets table-schemas`")

    def validate(context: dg.TypeCheckContext, value: object) -> dg.TypeCheck:
        if not isinstance(value, Mapping):
            return _pandera_type(name).type_check(context, value)
        # A month-partitioned table: a frame per month of the step's batch.
        for month, frame in value.items():
            check = _pandera_type(name).type_check(context, frame)
            if not check.success:
                return dg.TypeCheck(
                    success=False,
                    description=f"{name} {month}: {check.description}",
                    metadata=check.metadata,
                )
        return dg.TypeCheck(success=True)

    schema = dg.deserialize_value(json.dumps(stored["schema"]), dg.TableSchema)
    return dg.DagsterType(
        type_check_fn=validate,
        name=name,
        description=stored["description"],
        metadata={"schema": dg.MetadataValue.table_schema(schema)},
    )
