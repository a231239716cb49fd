"""Typed reading of raw landing files: the declared columns, their dtypes, clear errors.

Every failure names the file, the column and the offending values, so an operator knows
what to fix before re-landing the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from mlops_assets.landing.layout import LandingError

# Column -> dtype, as the feed documents them. Integers that may be missing are floats.
FLIGHTS_SCHEMA: Mapping[str, str] = {
    "year": "int16",
    "month": "int8",
    "day": "int8",
    "dep_time": "float32",
    "sched_dep_time": "int16",
    "dep_delay": "float32",
    "arr_time": "float32",
    "sched_arr_time": "int16",
    "arr_delay": "float32",
    "carrier": "category",
    "flight": "int16",
    "tailnum": "string",
    "origin": "category",
    "dest": "category",
    "air_time": "float32",
    "distance": "int16",
    "hour": "int8",
    "minute": "int8",
    "time_hour": "datetime",
}

WEATHER_SCHEMA: Mapping[str, str] = {
    "origin": "category",
    "year": "int16",
    "month": "int8",
    "day": "int8",
    "hour": "int8",
    "temp": "float32",
    "dewp": "float32",
    "humid": "float32",
    "wind_dir": "float32",
    "wind_speed": "float32",
    "wind_gust": "float32",
    "precip": "float32",
    "pressure": "float32",
    "visib": "float32",
    "time_hour": "datetime",
}

PLANES_SCHEMA: Mapping[str, str] = {
    "tailnum": "string",
    "year": "float32",
    "type": "category",
    "manufacturer": "category",
    "model": "category",
    "engines": "int8",
    "seats": "int16",
    "speed": "float32",
    "engine": "category",
}


def _coerce(path: Path, column: str, values: pd.Series, dtype: str) -> pd.Series:
    if dtype == "datetime":
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    elif dtype in ("category", "string"):
        return values.astype(dtype)
    else:
        parsed = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & parsed.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].unique()[:5])
        raise LandingError(
            f"{path}: column {column!r} expects {dtype} values, got {examples} "
            f"({int(bad.sum())} bad rows)"
        )
    if dtype.startswith("int"):
        if parsed.isna().any():
            first = int(parsed.isna().to_numpy().argmax())
            raise LandingError(f"{path}: column {column!r} is empty at row {first + 1}")
        if (parsed != parsed.round()).any():
            examples = ", ".join(repr(v) for v in values[parsed != parsed.round()].unique()[:5])
            raise LandingError(f"{path}: column {column!r} expects whole numbers, got {examples}")
    return parsed.astype(dtype) if dtype != "datetime" else parsed


def _read_typed(path: Path, schema: Mapping[str, str]) -> pd.DataFrame:
    """Parse straight into the declared dtypes: the fast path for files that conform."""
    dtypes = {c: "string" if t in ("string", "datetime") else t for c, t in schema.items()}
    frame = pd.read_csv(
        path, usecols=list(schema), dtype=dtypes, keep_default_na=True, na_values=["NA"]
    )
    for column, dtype in schema.items():
        if dtype == "datetime":
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame[list(schema)]


def read_raw_csv(path: Path, schema: Mapping[str, str]) -> pd.DataFrame:
    """Read one landing CSV (optionally gzip-compressed) into the declared dtypes.

    Args:
        path: The landing file.
        schema: Column name to dtype (``"datetime"`` for ISO-8601 UTC timestamps).

    Returns:
        The frame with exactly the schema's columns, in the schema's order.

    Raises:
        LandingError: On an unreadable file, missing columns or values of the wrong type.
    """
    try:
        frame = _read_typed(path, schema)
    except (ValueError, TypeError, OSError, EOFError):
        pass  # read it again as text, to name the file, the column and the values at fault
    else:
        if frame.empty:
            raise LandingError(f"{path}: the file has a header but no rows")
        return frame
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=True, na_values=["NA"])
    except UnicodeDecodeError as error:
        raise LandingError(f"{path}: {_not_utf8(path, error)}") from error
    except (OSError, EOFError) as error:
        raise LandingError(
            f"{path}: not a complete gzip file (truncated or corrupt: {error}); land it again"
        ) from error
    except pd.errors.ParserError as error:
        raise LandingError(f"{path}: not a well-formed CSV: {error}") from error
    except pd.errors.EmptyDataError as error:
        raise LandingError(f"{path}: the file is empty (no header, no rows)") from error
    missing = [column for column in schema if column not in frame.columns]
    if missing:
        extra = [column for column in frame.columns if column not in schema]
        raise LandingError(
            f"{path}: missing column(s) {missing}"
            + (f"; unexpected column(s) {extra}" if extra else "")
            + f"; found {list(frame.columns)}"
        )
    if frame.empty:
        raise LandingError(f"{path}: the file has a header but no rows")
    return pd.DataFrame(
        {column: _coerce(path, column, frame[column], dtype) for column, dtype in schema.items()}
    )


def _not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 sits: its line and the text around it."""
    import gzip

    with gzip.open(path, "rb") as handle:
        text = handle.read()
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as located:  # the parser's error is relative to its buffer
        error = located
    position = error.start
    line = text.count(b"\n", 0, position) + 1
    start = text.rfind(b"\n", 0, position) + 1
    end = text.find(b"\n", position)
    shown = text[start : end if end >= 0 else len(text)].decode("utf-8", errors="replace")
    return (
        f"not UTF-8 text: byte {error.object[error.start]:#04x} on line {line} "
        f"({shown[:120]!r}); the feed must be encoded in UTF-8"
    )


def concat_typed(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate typed frames, keeping categorical columns categorical."""
    parts = list(frames)
    categorical = [
        c for c in parts[0].columns if isinstance(parts[0][c].dtype, pd.CategoricalDtype)
    ]
    combined = pd.concat(
        [part.astype({c: "string" for c in categorical}) for part in parts], ignore_index=True
    )
    return combined.astype({c: "category" for c in categorical})


CONTEXT_HOURS = 29 * 24
"""Hours of the previous month kept with each month: the features' look-back (previous leg
within 24 h, the last departures and landings at an airport, the 28-day delay histories of a
flight number and of a route at an hour, counted by landing before the moment) must see
across the month boundary. With 29 days the histories are whole and 0.004% of February's
feature rows differ from a build of January and February together (rare destinations whose
last departures or landings are older); with none, 93% differ (``test_features.py``)."""


def with_context(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Prefix a month's rows with the last :data:`CONTEXT_HOURS` of the month before.

    Args:
        current: The month's typed rows (with a UTC ``time_hour``).
        previous: The previous month's typed rows, or None when it has not landed.

    Returns:
        The context rows (their ``month`` column names the previous month) then ``current``.
    """
    if previous is None or previous.empty:
        return current
    start = current["time_hour"].min() - pd.Timedelta(hours=CONTEXT_HOURS)
    return concat_typed([previous[previous["time_hour"] >= start], current])
