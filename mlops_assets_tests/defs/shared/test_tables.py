"""The stored tables' Dagster types: dagster-pandera's columns and checks, loaded without it."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets import definitions
from mlops_assets.cli import commands
from mlops_assets.defs.shared import tables
from mlops_assets.ml import schemas
from mlops_assets_tests.conftest import raw_flight, typed_flights


def test_the_snapshot_is_what_dagster_pandera_builds_from_the_schemas() -> None:
    assert json.loads(tables.SNAPSHOT.read_text()) == tables.column_schemas()
    assert commands.main(["table-schemas", "--check"]) == 0


def test_every_stored_table_shows_its_declared_columns_in_the_ui() -> None:
    graph = definitions.defs.resolve_asset_graph()
    for name, schema in schemas.TABLES.items():
        output = graph.assets_def_for_key(dg.AssetKey(name)).op.output_defs[0]
        dagster_type = output.dagster_type
        assert dagster_type.key == name and dagster_type.description == schema.description
        shown = dagster_type.metadata["schema"]
        assert isinstance(shown, dg.TableSchemaMetadataValue)
        columns = {column.name: column for column in shown.schema.columns}
        assert list(columns) == list(schema.columns)
        for column_name, column in schema.columns.items():
            assert columns[column_name].type == str(column.dtype)
            assert columns[column_name].constraints.nullable == column.nullable
    carrier = next(c for c in _columns("raw_flights") if c.name == "carrier")
    assert carrier.constraints.other == [f"isin({schemas.CARRIERS})"]


def _columns(name: str) -> list[dg.TableColumn]:
    shown = tables.table_type(name).metadata["schema"]
    assert isinstance(shown, dg.TableSchemaMetadataValue)
    return list(shown.schema.columns)


def test_the_type_check_is_the_pandera_validation() -> None:
    table_type = tables.table_type("raw_flights")
    good = typed_flights([raw_flight(flight=1), raw_flight(flight=2)])
    assert dg.check_dagster_type(table_type, good).success
    bad = typed_flights([raw_flight(flight=1, carrier="ZZ"), raw_flight(flight=2, distance=-5)])
    failed = dg.check_dagster_type(table_type, bad)
    assert not failed.success
    assert "carrier" in str(failed.description) and "ZZ" in str(failed.description)
    assert "distance" in str(failed.description)
    # A step over a batch of months stores a frame per month: each is checked, named.
    assert dg.check_dagster_type(table_type, {"2013-01": good, "2013-02": good}).success
    batch = dg.check_dagster_type(table_type, {"2013-01": good, "2013-02": bad})
    assert not batch.success and str(batch.description).startswith("raw_flights 2013-02: ")
    assert "ZZ" in str(batch.description)
    refused = dg.check_dagster_type(table_type, {"2013-01": {"carrier": ["UA"]}})
    assert not refused.success and "dict" in str(refused.description)
    assert not dg.check_dagster_type(table_type, ["not", "a", "frame"]).success


def test_a_stale_snapshot_is_reported_then_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = json.loads(tables.SNAPSHOT.read_text())
    stale["raw_planes"]["schema"]["columns"].pop()
    snapshot = tmp_path / "table_schemas.json"
    snapshot.write_text(json.dumps(stale))
    monkeypatch.setattr(tables, "SNAPSHOT", snapshot)
    assert commands.main(["table-schemas", "--check"]) == 1
    assert "stale; run `mlops-assets table-schemas`" in capsys.readouterr().err
    assert json.loads(snapshot.read_text()) == stale
    assert commands.main(["table-schemas"]) == 0
    assert json.loads(snapshot.read_text()) == tables.column_schemas()
    assert commands.main(["table-schemas", "--check"]) == 0


def test_a_table_missing_from_the_snapshot_names_the_command() -> None:
    with pytest.raises(KeyError, match="no table 'raw_trains': run `mlops-assets table-schemas`"):
        tables.table_type("raw_trains")
