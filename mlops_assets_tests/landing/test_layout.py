"""The landing zone and the `mlops-assets seed` command."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.cli import commands
from mlops_assets.landing import layout, scan
from mlops_assets.ml import raw


def test_seed_through_a_month_lands_only_those_months(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    results = layout.seed_landing_zone(root, "2013-03")
    assert layout.landed_months(root, "flights") == ["2013-01", "2013-02", "2013-03"]
    assert layout.landed_months(root, "weather") == ["2013-01", "2013-02", "2013-03"]
    assert (root / layout.PLANES_FILE).exists()
    assert {r.action for r in results} == {"written"}
    march = raw.read_raw_csv(layout.monthly_file(root, "flights", "2013-03"), raw.FLIGHTS_SCHEMA)
    assert set(march["month"]) == {3}
    assert len(march) == 28_834


def test_reseeding_is_a_no_op_and_later_months_can_arrive(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    layout.seed_landing_zone(root, "2013-01")
    before = layout.monthly_file(root, "flights", "2013-01").read_bytes()
    results = layout.seed_landing_zone(root, "2013-02")
    actions = {r.path.name: r.action for r in results if "flights" in r.path.parts}
    assert actions == {"2013-01.csv.gz": "unchanged", "2013-02.csv.gz": "written"}
    assert layout.monthly_file(root, "flights", "2013-01").read_bytes() == before


def test_seed_refuses_to_overwrite_a_differing_file_unless_forced(tmp_path: Path) -> None:
    root = tmp_path / "landing"
    layout.seed_landing_zone(root, "2013-01")
    edited = layout.monthly_file(root, "weather", "2013-01")
    edited.write_bytes(gzip.compress(b"origin,year\nEWR,2013\n"))
    with pytest.raises(layout.LandingError, match=r"2013-01\.csv\.gz already exists"):
        layout.seed_landing_zone(root, "2013-01")
    assert gzip.decompress(edited.read_bytes()) == b"origin,year\nEWR,2013\n"
    results = layout.seed_landing_zone(root, "2013-01", force=True)
    assert any(r.path == edited and r.action == "overwritten" for r in results)


@pytest.mark.parametrize("through", ["2013-13", "2013-1", "january", "2014-01"])
def test_cli_rejects_a_bad_month_with_a_clear_message(
    tmp_path: Path, through: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = commands.main(["seed", "--through", through, "--landing", str(tmp_path / "landing")])
    assert code == 2
    assert through in capsys.readouterr().err
    assert not (tmp_path / "landing").exists()


def test_cli_if_empty_leaves_a_partial_landing_zone_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "landing"
    assert commands.main(["seed", "--through", "2013-01", "--landing", str(root)]) == 0
    assert commands.main(["seed", "--if-empty", "--landing", str(root)]) == 0
    assert "already holds data" in capsys.readouterr().out
    assert layout.landed_months(root, "flights") == ["2013-01"]


def test_landed_months_ignores_partial_copies_and_rejects_stray_names(tmp_path: Path) -> None:
    folder = tmp_path / "flights"
    folder.mkdir()
    (folder / "2013-01.csv.gz").write_bytes(b"")
    (folder / ".2013-02.csv.gz.part").write_bytes(b"")
    assert layout.landed_months(tmp_path, "flights") == ["2013-01"]
    (folder / "2013-13.csv.gz").write_bytes(b"")
    with pytest.raises(layout.LandingError, match="2013-13"):
        layout.landed_months(tmp_path, "flights")


def _write(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_raw_reader_names_the_file_and_missing_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "2013-01.csv.gz", "tailnum,year\nN1,2001\n")
    with pytest.raises(layout.LandingError, match=r"2013-01\.csv\.gz: missing column\(s\)"):
        raw.read_raw_csv(path, raw.PLANES_SCHEMA)


def test_raw_reader_names_the_column_and_bad_values(tmp_path: Path) -> None:
    header = ",".join(raw.PLANES_SCHEMA)
    path = _write(
        tmp_path / "planes.csv.gz",
        f"{header}\nN1,2001,Fixed wing,BOEING,737,two,149,,Turbo-fan\n",
    )
    with pytest.raises(
        layout.LandingError, match=r"column 'engines' expects int8 values, got 'two'"
    ):
        raw.read_raw_csv(path, raw.PLANES_SCHEMA)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "the file is empty"),
        (b"\x1f\x8b\x08\x00garbage", "not a complete gzip file .truncated or corrupt"),
    ],
)
def test_raw_reader_reports_empty_and_corrupt_files(
    tmp_path: Path, payload: bytes, message: str
) -> None:
    path = tmp_path / "2013-01.csv.gz"
    path.write_bytes(payload)
    with pytest.raises(layout.LandingError, match=message):
        raw.read_raw_csv(path, raw.FLIGHTS_SCHEMA)


def test_raw_reader_types_real_rows(seeded_landing: Path) -> None:
    flights = raw.read_raw_csv(
        layout.monthly_file(seeded_landing, "flights", "2013-01"), raw.FLIGHTS_SCHEMA
    )
    assert list(flights.columns) == list(raw.FLIGHTS_SCHEMA)
    assert flights["time_hour"].dt.tz is not None
    assert isinstance(flights["carrier"].dtype, pd.CategoricalDtype)
    first = flights.iloc[0]
    assert (first["carrier"], int(first["flight"]), first["tailnum"]) == ("UA", 1545, "N14228")
    assert first["time_hour"] == pd.Timestamp("2013-01-01T10:00:00Z")


def test_landed_months_and_the_scan_skip_the_same_temporary_names(tmp_path: Path) -> None:
    folder = tmp_path / "flights"
    folder.mkdir()
    for name in (".2013-01.csv.gz.part", "2013-02.csv.gz.part", "2013-03.csv.gz.tmp"):
        (folder / name).write_bytes(b"partial")
    assert layout.landed_months(tmp_path, "flights") == []
    assert scan.scan(tmp_path, {}).rejected == []


@pytest.mark.parametrize(
    ("table", "schema"), [("flights", raw.FLIGHTS_SCHEMA), ("weather", raw.WEATHER_SCHEMA)]
)
def test_the_fast_typed_read_equals_the_validating_read(
    seeded_landing: Path, table: str, schema: Mapping[str, str]
) -> None:
    path = layout.monthly_file(seeded_landing, table, "2013-03")
    validating = pd.DataFrame(
        {
            column: raw._coerce(path, column, values, dtype)
            for (column, dtype), (_, values) in zip(
                schema.items(),
                pd.read_csv(path, dtype=str, na_values=["NA"])[list(schema)].items(),
                strict=True,
            )
        }
    )
    pd.testing.assert_frame_equal(raw._read_typed(path, schema), validating)
    pd.testing.assert_frame_equal(raw.read_raw_csv(path, schema), validating)
