"""The landing-zone scan behind the sensor: new, changed, re-landed, partial and stray files."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from mlops_assets.landing import layout, scan
from mlops_assets.resources import LandingZone


@pytest.fixture
def zone(seeded_landing: Path, tmp_path: Path) -> Path:
    """A writable landing zone holding January and February of the real data, and planes."""
    root = tmp_path / "landing"
    for month in ("2013-01", "2013-02"):
        for table in layout.MONTHLY_TABLES:
            target = layout.monthly_file(root, table, month)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(layout.monthly_file(seeded_landing, table, month), target)
    shutil.copyfile(seeded_landing / layout.PLANES_FILE, root / layout.PLANES_FILE)
    return root


def _land(zone: Path, seeded_landing: Path, table: str, month: str) -> Path:
    """Land one real month's file by the protocol: temporary name, then rename."""
    target = layout.monthly_file(zone, table, month)
    temporary = target.with_name(f".{target.name}.part")
    shutil.copyfile(layout.monthly_file(seeded_landing, table, month), temporary)
    temporary.replace(target)
    return target


def _months(result: scan.ScanResult) -> dict[str, list[str]]:
    return {table: sorted(result.months(table)) for table in layout.MONTHLY_TABLES}


def test_first_scan_consumes_everything_then_nothing_is_new(zone: Path) -> None:
    first = scan.scan(zone, {})
    assert _months(first) == {"flights": ["2013-01", "2013-02"], "weather": ["2013-01", "2013-02"]}
    assert [c.key for c in first.changed if c.table == "planes"] == ["planes.csv.gz"]
    assert first.files_read == 5
    second = scan.scan(zone, first.state)
    assert second.changed == []
    assert second.files_read == 0  # unchanged size and mtime: nothing is read again
    assert second.state == first.state


def test_a_new_month_is_consumed_once_both_of_its_files_have_landed(
    zone: Path, seeded_landing: Path
) -> None:
    state = scan.scan(zone, {}).state
    _land(zone, seeded_landing, "flights", "2013-03")
    waiting = scan.scan(zone, state)
    assert waiting.changed == []
    assert any(
        "waiting for" in line and "weather/2013-03.csv.gz" in line for line in waiting.waiting
    )
    _land(zone, seeded_landing, "weather", "2013-03")
    arrived = scan.scan(zone, waiting.state)
    assert _months(arrived) == {"flights": ["2013-03"], "weather": ["2013-03"]}
    assert arrived.files_read == 2


def test_relanded_identical_content_is_not_new_but_changed_content_is(
    zone: Path, seeded_landing: Path
) -> None:
    state = scan.scan(zone, {}).state
    relanded = _land(zone, seeded_landing, "flights", "2013-01")
    os.utime(relanded, ns=(1, 1))  # a new modification time, the same bytes
    same = scan.scan(zone, state)
    assert same.changed == [] and same.files_read == 1
    rows = gzip.decompress(relanded.read_bytes()).decode().splitlines()
    changed_bytes = gzip.compress("\n".join(rows[:-1]).encode() + b"\n", mtime=0)
    temporary = relanded.with_name(".2013-01.csv.gz.part")
    temporary.write_bytes(changed_bytes)
    temporary.replace(relanded)
    changed = scan.scan(zone, same.state)
    assert _months(changed) == {"flights": ["2013-01"], "weather": []}
    assert changed.changed[0].sha256 != state["flights/2013-01.csv.gz"].sha256


def test_partial_copies_and_stray_names_are_reported_and_never_consumed(
    zone: Path, seeded_landing: Path
) -> None:
    state = scan.scan(zone, {}).state
    source = layout.monthly_file(seeded_landing, "flights", "2013-04").read_bytes()
    (zone / "flights" / ".2013-04.csv.gz.part").write_bytes(source[:1000])  # in progress
    layout.monthly_file(zone, "weather", "2013-04").write_bytes(
        layout.monthly_file(seeded_landing, "weather", "2013-04").read_bytes()[:5000]
    )  # copied straight to its final name, and not finished
    (zone / "flights" / "2013-13.csv.gz").write_bytes(b"")
    (zone / "flights" / "notes.txt").write_text("hello")
    result = scan.scan(zone, state)
    assert result.changed == []
    assert sorted(result.rejected) == [
        f"{zone / 'flights' / '2013-13.csv.gz'}: not a monthly file name, ignored "
        "('2013-13' is not a month in the form YYYY-MM (e.g. 2013-06))",
        f"{zone / 'flights' / 'notes.txt'}: not a monthly file name, ignored (want YYYY-MM.csv.gz)",
    ]
    assert result.waiting == [
        f"{zone / 'weather' / '2013-04.csv.gz'}: gzip stream is incomplete (a copy in "
        "progress or truncated); not consumed, looked at again next time"
    ]
    assert "weather/2013-04.csv.gz" not in result.state
    # The copy finishes: both April files are then consumed together.
    _land(zone, seeded_landing, "weather", "2013-04")
    _land(zone, seeded_landing, "flights", "2013-04")
    done = scan.scan(zone, result.state)
    assert _months(done) == {"flights": ["2013-04"], "weather": ["2013-04"]}


def test_state_round_trips_through_the_cursor(zone: Path) -> None:
    state = scan.scan(zone, {}).state
    assert scan.decode_state(scan.encode_state(state)) == state
    assert scan.decode_state(None) == {}
    for unreadable in ('{"version": 0, "files": {}}', "not json", '{"files": {}}'):
        with pytest.raises(ValueError, match="reset the sensor's cursor"):
            scan.decode_state(unreadable)


def test_a_month_waits_while_its_other_file_is_incomplete(zone: Path, seeded_landing: Path) -> None:
    state = scan.scan(zone, {}).state
    _land(zone, seeded_landing, "flights", "2013-05")
    weather = layout.monthly_file(zone, "weather", "2013-05")
    weather.write_bytes(
        layout.monthly_file(seeded_landing, "weather", "2013-05").read_bytes()[:3000]
    )
    result = scan.scan(zone, state)
    assert result.changed == []
    assert "flights/2013-05.csv.gz" not in result.state
    assert any("waiting for a complete" in line for line in result.waiting)


def test_content_version_changes_with_the_bytes_only(zone: Path, seeded_landing: Path) -> None:
    files = [layout.monthly_file(zone, "flights", m) for m in ("2013-01", "2013-02")]
    before = scan.content_version(files)
    assert scan.content_version(list(reversed(files))) == before
    os.utime(files[0], ns=(1, 1))
    assert scan.content_version(files) == before
    files[0].write_bytes(gzip.compress(b"year,month\n2013,1\n", mtime=0))
    assert scan.content_version(files) != before


def test_concatenated_gzip_members_are_complete_but_trailing_bytes_are_not(
    tmp_path: Path,
) -> None:
    two_members = tmp_path / "2013-01.csv.gz"
    two_members.write_bytes(gzip.compress(b"a\n", mtime=0) + gzip.compress(b"b\n", mtime=0))
    assert len(scan.file_sha256(two_members)) == 64
    cut = tmp_path / "2013-02.csv.gz"
    cut.write_bytes(gzip.compress(b"a\n", mtime=0) + gzip.compress(b"b\n" * 1000, mtime=0)[:20])
    with pytest.raises(layout.LandingError, match="incomplete"):
        scan.file_sha256(cut)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "2013-01.csv.gz"
    bad.write_bytes(b"this is not gzip at all")
    with pytest.raises(layout.LandingError, match=f"{bad}: not a valid gzip file"):
        scan.file_sha256(bad)


def test_a_changed_month_rebuilds_the_next_one_only_when_it_was_consumed(
    zone: Path, seeded_landing: Path
) -> None:
    state = scan.scan(zone, {}).state
    for table in layout.MONTHLY_TABLES:
        _land(zone, seeded_landing, table, "2013-03")
    _land(zone, seeded_landing, "flights", "2013-04")  # weather of April not landed yet
    february = layout.monthly_file(zone, "flights", "2013-02")
    february.write_bytes(gzip.compress(b"year,month\n2013,2\n", mtime=0))
    result = scan.scan(zone, state)
    # February changed, March is new; January is not affected; April is not complete.
    assert scan.months_to_build(result) == ["2013-02", "2013-03"]
    later = scan.scan(zone, result.state)
    assert scan.months_to_build(later) == []


def test_a_months_version_is_the_content_version_of_the_files_its_partition_reads(
    zone: Path,
) -> None:
    state = scan.scan(zone, {}).state
    february = [layout.monthly_file(zone, "flights", m) for m in ("2013-01", "2013-02")]
    assert scan.month_version(state, "flights", "2013-02") == (scan.content_version(february))
    # January has no complete month before it: its own file only.
    assert scan.month_version(state, "flights", "2013-01") == (scan.content_version(february[:1]))
    # Without January's weather, January is not complete: February reads no context.
    del state["weather/2013-01.csv.gz"]
    assert scan.month_inputs(state, "flights", "2013-02") == ["flights/2013-02.csv.gz"]


@pytest.mark.parametrize("removed", [None, "weather/2013-01.csv.gz", "flights/2013-01.csv.gz"])
def test_the_sensor_versions_the_files_the_raw_assets_read(zone: Path, removed: str | None) -> None:
    """One rule for "which files a month reads": the scan's keys are the resource's paths."""
    if removed:
        (zone / removed).unlink()
    state = scan.scan(zone, {}).state
    landing_zone = LandingZone(path=str(zone))
    for table in layout.MONTHLY_TABLES:
        previous = landing_zone.previous_month_file(table, "2013-02")
        read = [*([previous] if previous else []), landing_zone.month_file(table, "2013-02")]
        assert scan.month_inputs(state, table, "2013-02") == [
            path.relative_to(zone).as_posix() for path in read
        ]
        assert len(read) == (1 if removed else 2)


def test_complete_months_skip_stray_names_and_lone_files(zone: Path) -> None:
    (zone / "flights" / "notes.txt").write_text("not data")
    (zone / "flights" / "2013-07.csv.gz").write_bytes(b"")
    assert scan.complete_months(zone) == ["2013-01", "2013-02"]


def test_pending_months_ride_along_in_the_cursor(zone: Path) -> None:
    state = scan.scan(zone, {}).state
    cursor = scan.encode_state(state, ["2013-02", "2013-01"])
    assert scan.decode_state(cursor) == state
    assert scan.decode_pending(cursor) == ["2013-01", "2013-02"]
    assert scan.decode_pending(scan.encode_state(state)) == []
