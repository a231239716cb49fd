"""The data-quality outcomes on small hand-made frames: each names what is wrong."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_assets.ml import quality, schemas
from mlops_assets_tests.conftest import raw_flight, typed_flights


def test_a_conforming_frame_passes_the_schema() -> None:
    frame = typed_flights([raw_flight(flight=1), raw_flight(flight=2)])
    outcome = quality.schema_outcome(frame, schemas.RAW_FLIGHTS, "f.csv.gz")
    assert outcome.passed and outcome.blocking


def test_the_schema_names_every_column_and_value_at_fault() -> None:
    frame = typed_flights(
        [raw_flight(flight=1, carrier="ZZ"), raw_flight(flight=2, distance=-5, minute=75)]
    )
    outcome = quality.schema_outcome(frame, schemas.RAW_FLIGHTS, "f.csv.gz")
    assert not outcome.passed
    assert outcome.summary.startswith("f.csv.gz: ")
    assert "column 'carrier' fails isin" in outcome.summary and "'ZZ'" in outcome.summary
    assert "column 'distance' fails in_range(1, 6000): -5" in outcome.summary
    assert "column 'minute' fails in_range(0, 59): 75" in outcome.summary
    assert outcome.numbers["columns_at_fault"] == 3
    assert outcome.failures is not None and len(outcome.failures) == 3


def test_duplicates_are_counted_once_per_extra_row_and_shown_by_key() -> None:
    frame = typed_flights([raw_flight(flight=7)] * 3 + [raw_flight(flight=8)])
    outcome = quality.duplicates_outcome(frame, schemas.FLIGHT_KEY, "f")
    assert not outcome.passed and outcome.numbers["duplicated_rows"] == 2
    assert "e.g. 2013 1 1 UA 7 EWR" in outcome.summary


def test_rows_of_another_month_are_counted_by_month() -> None:
    frame = typed_flights(
        [raw_flight(month=1), raw_flight(month=2, flight=2), raw_flight(flight=3)]
    )
    outcome = quality.month_outcome(frame, "2013-01", "f")
    assert not outcome.passed
    assert "1 of 3 rows are not in 2013-01 (1 in 2013-02; first at line 3)" in outcome.summary


@pytest.mark.parametrize(
    ("rows", "previous", "passed"),
    [(100, None, True), (100, 95, True), (100, 160, False), (100, 60, False)],
)
def test_row_count_warns_outside_the_band(rows: int, previous: int | None, passed: bool) -> None:
    outcome = quality.row_count_outcome(rows, previous, (0.7, 1.3), "m")
    assert outcome.passed is passed and not outcome.blocking


def test_null_rates_use_the_column_limit_before_the_default() -> None:
    frame = pd.DataFrame({"a": [None, 1.0, 2.0, 3.0], "wind_gust": [None, None, None, 1.0]})
    outcome = quality.null_rates_outcome(frame, {"wind_gust": 0.9}, 0.1, "m")
    assert not outcome.passed and not outcome.blocking
    assert outcome.summary == "m: too many missing values: a 25.0% > 10.0%"
    assert outcome.numbers["null_share.wind_gust"] == 0.75


def test_impossible_readings_are_blanked_and_listed() -> None:
    frame = pd.DataFrame({"wind_speed": [5.0, 1048.36, None], "temp": [20.0, 30.0, -99.0]})
    cleaned, masked = quality.mask_impossible(
        frame, {c: schemas.WEATHER_LIMITS[c] for c in frame.columns}
    )
    assert masked == {"wind_speed": [1048.36], "temp": [-99.0]}
    assert cleaned["wind_speed"].isna().tolist() == [False, True, True]
    assert frame["wind_speed"].iloc[1] == 1048.36  # the input is left as it was
    outcome = quality.masked_outcome(masked, "w")
    assert not outcome.passed and "wind_speed: 1048.36" in outcome.summary
