"""Data-quality outcomes of one partition: what each check found, in words and numbers.

Each function looks at a table (or its counts) and returns a :class:`Outcome`: whether it
passed, whether a failure must stop the data (``blocking``), a summary that names the
source, the column and the offending values, and the numbers worth showing. The assets turn
outcomes into Dagster asset check results and refuse to store a partition that fails a
blocking one, so the partition stored before is kept. No dagster import here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

from mlops_assets.landing.layout import month_key, parse_month

EXAMPLES = 5
"""Offending values quoted in a summary, per column and check."""


@dataclass(frozen=True)
class Outcome:
    """The result of one data-quality check on one partition.

    Attributes:
        check: The check's name (``schema``, ``duplicates``, ``null_rates``...).
        passed: Whether the data meets the check.
        blocking: Whether a failure must keep the data from being stored and used.
        summary: One paragraph naming the source, the columns and the offending values.
        numbers: Figures shown with the result (counts, shares, bounds).
        failures: Up to a few offending rows or values, for a table in the UI.
    """

    check: str
    passed: bool
    blocking: bool
    summary: str
    numbers: Mapping[str, float | int | str] = field(default_factory=dict)
    failures: pd.DataFrame | None = None


def _quote(values: Sequence[object]) -> str:
    shown = ", ".join(repr(v) for v in values[:EXAMPLES])
    return shown + (f" and {len(values) - EXAMPLES} more" if len(values) > EXAMPLES else "")


def schema_outcome(frame: pd.DataFrame, schema: pa.DataFrameSchema, source: str) -> Outcome:
    """Validate every column of ``frame`` against ``schema`` (all errors, not the first).

    Args:
        frame: The typed table.
        schema: Its declared schema (see :mod:`mlops_assets.ml.schemas`).
        source: The file or partition the table comes from, named in the summary.
    """
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        problems = []
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            values = group["failure_case"].drop_duplicates().tolist()
            problems.append(
                f"column {column!r} fails {check}: {_quote(values)} ({len(group)} values)"
            )
        table = cases[["column", "check", "failure_case", "index"]].head(20).astype(str)
        return Outcome(
            "schema",
            passed=False,
            blocking=True,
            summary=f"{source}: " + "; ".join(problems),
            numbers={"failures": len(cases), "columns_at_fault": cases["column"].nunique()},
            failures=table,
        )
    return Outcome(
        "schema",
        passed=True,
        blocking=True,
        summary=f"{source}: {len(frame.columns)} columns of the declared types and ranges",
        numbers={"columns": len(frame.columns), "rows": len(frame)},
    )


def month_outcome(frame: pd.DataFrame, month: str, source: str) -> Outcome:
    """Every row of a month's file belongs to that month (its ``year`` and ``month`` columns)."""
    year, number = parse_month(month)
    foreign = frame[(frame["year"] != year) | (frame["month"] != number)]
    if foreign.empty:
        return Outcome(
            "rows_in_month", True, True, f"{source}: all {len(frame)} rows are in {month}"
        )
    found = foreign.groupby(["year", "month"], observed=True).size()
    counts = {month_key(int(y), int(m)): int(n) for (y, m), n in found.items()}
    described = ", ".join(f"{n} in {key}" for key, n in counts.items())
    first = int(foreign.index[0]) + 2  # header line, then 1-based rows
    return Outcome(
        "rows_in_month",
        passed=False,
        blocking=True,
        summary=f"{source}: {len(foreign)} of {len(frame)} rows are not in {month} "
        f"({described}; first at line {first})",
        numbers={"foreign_rows": len(foreign), "rows": len(frame)},
    )


def duplicates_outcome(frame: pd.DataFrame, key: Sequence[str], source: str) -> Outcome:
    """No two rows share the natural key ``key``."""
    repeated = frame[frame.duplicated(list(key), keep=False)]
    if repeated.empty:
        return Outcome(
            "duplicates",
            True,
            True,
            f"{source}: each of {len(frame)} rows has its own {', '.join(key)}",
            numbers={"duplicated_rows": 0},
        )
    examples = repeated[list(key)].drop_duplicates().head(EXAMPLES)
    shown = "; ".join(
        " ".join(str(value) for value in row) for row in examples.itertuples(index=False)
    )
    extra = len(repeated) - repeated[list(key)].drop_duplicates().shape[0]
    return Outcome(
        "duplicates",
        passed=False,
        blocking=True,
        summary=f"{source}: {extra} duplicated rows on ({', '.join(key)}), e.g. {shown}",
        numbers={"duplicated_rows": extra},
        failures=examples.astype(str),
    )


def null_rates_outcome(
    frame: pd.DataFrame, limits: Mapping[str, float], default_limit: float, source: str
) -> Outcome:
    """The share of missing values of each column stays under its limit (a warning)."""
    rates = frame.isna().mean() if len(frame) else pd.Series(0.0, index=frame.columns)
    over = {
        column: float(rate)
        for column, rate in rates.items()
        if rate > limits.get(str(column), default_limit)
    }
    numbers = {f"null_share.{column}": round(float(rate), 4) for column, rate in rates.items()}
    if not over:
        return Outcome(
            "null_rates", True, False, f"{source}: missing values within limits", numbers
        )
    described = ", ".join(
        f"{column} {rate:.1%} > {limits.get(column, default_limit):.1%}"
        for column, rate in over.items()
    )
    return Outcome(
        "null_rates", False, False, f"{source}: too many missing values: {described}", numbers
    )


def row_count_outcome(
    rows: int, previous_rows: int | None, band: tuple[float, float], source: str
) -> Outcome:
    """The row count is within ``band`` (ratios) of the previous month's (a warning)."""
    low, high = band
    if previous_rows is None or previous_rows == 0:
        return Outcome(
            "row_count",
            True,
            False,
            f"{source}: {rows} rows; no previous month to compare with",
            {"rows": rows},
        )
    ratio = rows / previous_rows
    numbers: dict[str, float | int | str] = {
        "rows": rows,
        "previous_month_rows": previous_rows,
        "ratio": round(ratio, 4),
    }
    if low <= ratio <= high:
        return Outcome(
            "row_count", True, False, f"{source}: {rows} rows, {ratio:.2f}x last month", numbers
        )
    return Outcome(
        "row_count",
        False,
        False,
        f"{source}: {rows} rows is {ratio:.2f}x the previous month's {previous_rows}, "
        f"outside [{low}, {high}]",
        numbers,
    )


def share_outcome(
    check: str, share: float, bounds: tuple[float, float], what: str, source: str
) -> Outcome:
    """A share (label rate, join coverage) within ``bounds``; a blocking check."""
    low, high = bounds
    passed = bool(low <= share <= high)
    verdict = "within" if passed else "outside"
    return Outcome(
        check,
        passed,
        True,
        f"{source}: {what} is {share:.2%}, {verdict} [{low:.0%}, {high:.0%}]",
        {"share": round(float(share), 4), "min": low, "max": high},
    )


def mask_impossible(
    frame: pd.DataFrame, limits: Mapping[str, tuple[float, float]]
) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    """Blank sensor readings outside physical limits; return the readings blanked per column.

    A weather feed has the odd sensor glitch (2013 has a 1,048 mph wind at EWR): one wrong
    reading must not keep a month of flights out of the model, so it becomes a missing value
    and is reported, while the rest of the schema still refuses the file.
    """
    masked: dict[str, list[float]] = {}
    cleaned = frame.copy()
    for column, (low, high) in limits.items():
        values = cleaned[column]
        bad = values.notna() & ((values < low) | (values > high))
        if bad.any():
            masked[column] = [float(v) for v in values[bad].tolist()]
            cleaned[column] = values.mask(bad)
    return cleaned, masked


def masked_outcome(masked: Mapping[str, list[float]], source: str) -> Outcome:
    """Report the readings :func:`mask_impossible` blanked (a warning)."""
    if not masked:
        return Outcome("impossible_readings", True, False, f"{source}: every reading is possible")
    described = "; ".join(f"{column}: {_quote(values)}" for column, values in masked.items())
    return Outcome(
        "impossible_readings",
        False,
        False,
        f"{source}: readings outside physical limits were blanked: {described}",
        {f"masked.{column}": len(values) for column, values in masked.items()},
    )
