"""Feature engineering: hand-verified joins, exclusions and the no-leakage guarantee."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets import landing
from mlops_assets.ml import raw
from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET, WEATHER_COLUMNS
from mlops_assets.ml.features import (
    FeatureSettings,
    build_features,
    build_month_features,
    flight_clock,
)
from mlops_assets_tests.conftest import PLANES, raw_flight, raw_frame, weather_row

WEATHER = raw_frame(
    [
        weather_row("EWR", "2013-01-01T08:00:00Z"),
        weather_row("EWR", "2013-01-01T09:00:00Z"),
        weather_row("EWR", "2013-01-01T10:00:00Z"),
        weather_row("LGA", "2013-01-01T09:00:00Z", visib=0.25),
    ]
)


@pytest.mark.parametrize(
    ("lead", "minute", "expected_hour"),
    [
        (60, 30, 9),  # moment 09:30 -> latest observation before it is 09:00
        (0, 30, 10),  # moment 10:30 -> 10:00
        (30, 30, 9),  # moment 10:00 -> the 10:00 observation is not strictly before it
        (150, 0, None),  # moment 07:30 -> no observation before it: weather is missing
    ],
)
def test_weather_is_the_origins_last_observation_before_the_moment(
    lead: int, minute: int, expected_hour: int | None
) -> None:
    flights = raw_frame([raw_flight(minute=minute)])
    features, _ = build_features(flights, WEATHER, PLANES, FeatureSettings(lead_time_minutes=lead))
    if expected_hour is None:
        assert features[list(WEATHER_COLUMNS)].isna().all(axis=None)
        return
    assert features.loc[0, "temp"] == expected_hour
    moment = pd.Timestamp("2013-01-01 10:00") + pd.Timedelta(minutes=minute - lead)
    expected_age = (
        moment - pd.Timestamp(f"2013-01-01 {expected_hour:02d}:00")
    ).total_seconds() / 60
    assert features.loc[0, "weather_age_minutes"] == expected_age


def test_weather_comes_from_the_flights_own_origin() -> None:
    flights = raw_frame([raw_flight(origin="LGA", minute=30), raw_flight(origin="EWR", minute=30)])
    features, _ = build_features(flights, WEATHER, PLANES, FeatureSettings(lead_time_minutes=0))
    assert features.loc[features["origin"] == "LGA", "visib"].item() == 0.25
    assert features.loc[features["origin"] == "EWR", "visib"].item() == 10.0


def test_cancelled_and_diverted_flights_are_excluded_and_counted() -> None:
    flights = raw_frame(
        [
            raw_flight(flight=1, arr_delay=20.0, dep_delay=18.0),
            raw_flight(flight=2, arr_delay=14.0, dep_delay=5.0),
            raw_flight(flight=3, arr_delay=None, dep_delay=None),  # cancelled
            raw_flight(flight=4, arr_delay=None, dep_delay=30.0),  # diverted
            raw_flight(flight=5, arr_delay=15.0, dep_delay=-2.0),
        ]
    )
    features, summary = build_features(flights, WEATHER, PLANES)
    assert summary.excluded_no_arrival == 2
    assert summary.rows == 3
    assert dict(zip(features["carrier_flight"], features[TARGET], strict=True)) == {
        "UA1": 1,
        "UA2": 0,
        "UA5": 1,
    }


def test_airport_state_counts_only_departures_known_before_the_moment() -> None:
    # Target flight 9 at 10:00Z, lead 60 -> moment 09:00Z.
    flights = raw_frame(
        [
            raw_flight(flight=1, time_hour="2013-01-01T08:00:00Z", dep_delay=20.0),  # left 08:20
            raw_flight(flight=2, time_hour="2013-01-01T08:00:00Z", minute=30, dep_delay=40.0),
            # ^ due 08:30, leaves 09:10: not known at 09:00 -> in the backlog
            raw_flight(flight=3, time_hour="2013-01-01T08:00:00Z", minute=40, dep_delay=None),
            # ^ due 08:40, never left -> in the backlog
            raw_flight(flight=9, time_hour="2013-01-01T10:00:00Z", dep_delay=-30.0),
        ]
    )
    features, _ = build_features(flights, WEATHER, PLANES, FeatureSettings(lead_time_minutes=60))
    target = features.set_index("carrier_flight").loc["UA9"]
    assert target["origin_recent_dep_delay"] == 20.0
    assert target["minutes_since_origin_departure"] == 40.0
    assert target["origin_backlog"] == 2.0


def test_previous_leg_delay_is_exact_if_known_and_a_lower_bound_if_overdue() -> None:
    rows = [
        raw_flight(flight=1, tailnum="N1", time_hour="2013-01-01T06:00:00Z", dep_delay=25.0),
        raw_flight(flight=2, tailnum="N1", time_hour="2013-01-01T10:00:00Z", dep_delay=0.0),
        raw_flight(flight=3, tailnum="N2", time_hour="2013-01-01T08:00:00Z", dep_delay=90.0),
        raw_flight(flight=4, tailnum="N2", time_hour="2013-01-01T10:00:00Z", dep_delay=0.0),
    ]
    features, _ = build_features(raw_frame(rows), WEATHER, PLANES)
    by_flight = features.set_index("carrier_flight")
    assert by_flight.loc["UA2", "tail_prev_leg_delay"] == 25.0  # left 06:25 < moment 09:00
    # N2's 08:00 leg leaves at 09:30, after the 09:00 moment: known only to be >= 60 min late.
    assert by_flight.loc["UA4", "tail_prev_leg_delay"] == 60.0
    assert by_flight.loc["UA4", "tail_sched_gap_minutes"] == 120.0
    assert by_flight.loc["UA4", "tail_leg_of_day"] == 2.0
    assert np.isnan(by_flight.loc["UA1", "tail_prev_leg_delay"])


def _real_slice(seeded_landing: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    flights = raw.read_raw_csv(
        landing.monthly_file(seeded_landing, "flights", "2013-02"), raw.FLIGHTS_SCHEMA
    )
    flights = flights[flights["day"].isin([8, 9])].reset_index(drop=True)  # a snowstorm
    weather = raw.read_raw_csv(
        landing.monthly_file(seeded_landing, "weather", "2013-02"), raw.WEATHER_SCHEMA
    )
    planes = raw.read_raw_csv(seeded_landing / landing.PLANES_FILE, raw.PLANES_SCHEMA)
    return flights, weather, planes


@pytest.mark.parametrize("lead", [60, 0])
def test_scrambling_everything_after_the_moment_leaves_features_identical(
    seeded_landing: Path, lead: int
) -> None:
    flights, weather, planes = _real_slice(seeded_landing)
    settings = FeatureSettings(lead_time_minutes=lead)
    baseline, _ = build_features(flights, weather, planes, settings)
    baseline = baseline.set_index(["carrier_flight", "sched_dep_utc"])
    clock = flight_clock(flights, lead)
    rng = np.random.default_rng(7)
    has_arrival = np.flatnonzero(flights["arr_delay"].notna().to_numpy())
    for i in rng.choice(has_arrival, size=12, replace=False):
        moment = clock.loc[i, "moment"]
        scrambled = flights.copy()
        # Departures not known at the moment (the flight's own included) get new, later times;
        # some become cancellations. Arrivals and air times are scrambled everywhere.
        unknown = ~(clock["known_dep_utc"] < moment)
        floor = ((moment - clock["sched_dep_utc"]).dt.total_seconds() / 60).clip(lower=0)
        new_delay = floor + rng.uniform(0, 300, len(flights)).round()
        new_delay[rng.random(len(flights)) < 0.2] = np.nan
        scrambled.loc[unknown, "dep_delay"] = new_delay[unknown].astype("float32")
        scrambled.loc[i, "dep_delay"] = np.float32(rng.uniform(-60, 600))
        for column in ("dep_time", "arr_time", "arr_delay", "air_time"):
            scrambled[column] = rng.uniform(0, 2400, len(flights)).astype("float32")
        later_weather = weather.copy()
        after = later_weather["time_hour"].dt.tz_convert("UTC").dt.tz_localize(None) >= moment
        for column in WEATHER_COLUMNS:
            later_weather.loc[after, column] = rng.uniform(0, 100, int(after.sum())).astype(
                "float32"
            )
        features, _ = build_features(scrambled, later_weather, planes, settings)
        key = (
            f"{flights.loc[i, 'carrier']}{flights.loc[i, 'flight']}",
            clock.loc[i, "sched_dep_utc"],
        )
        got = features.set_index(["carrier_flight", "sched_dep_utc"]).loc[
            [key], list(FEATURE_COLUMNS)
        ]
        pd.testing.assert_frame_equal(got, baseline.loc[[key], list(FEATURE_COLUMNS)])


def test_own_departure_and_arrival_columns_are_not_features() -> None:
    forbidden = {"dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"}
    assert forbidden.isdisjoint(FEATURE_COLUMNS)


def test_a_month_built_on_its_own_with_context_rows_matches_a_build_of_both_months(
    seeded_landing: Path,
) -> None:
    def read(table: str, month: str, schema: dict[str, str]) -> pd.DataFrame:
        return raw.read_raw_csv(landing.monthly_file(seeded_landing, table, month), schema)

    planes = raw.read_raw_csv(seeded_landing / landing.PLANES_FILE, raw.PLANES_SCHEMA)
    flights = {m: read("flights", m, dict(raw.FLIGHTS_SCHEMA)) for m in ("2013-01", "2013-02")}
    weather = {m: read("weather", m, dict(raw.WEATHER_SCHEMA)) for m in ("2013-01", "2013-02")}
    both, _ = build_features(
        raw.concat_typed(flights.values()), raw.concat_typed(weather.values()), planes
    )
    both = both[both["month"] == 2].reset_index(drop=True)

    def differing(with_context: bool) -> pd.DataFrame:
        month, _ = build_month_features(
            "2013-02",
            raw.with_context(flights["2013-02"], flights["2013-01"] if with_context else None),
            raw.with_context(weather["2013-02"], weather["2013-01"] if with_context else None),
            planes,
        )
        assert len(month) == len(both) and set(month["month"]) == {2}
        columns = list(FEATURE_COLUMNS)
        same = (month[columns] == both[columns]) | (month[columns].isna() & both[columns].isna())
        return ~same

    with_context, alone = differing(True), differing(False)
    # Only "last departures" look-backs older than the context (rare destinations) differ.
    assert set(with_context.columns[with_context.any()]) <= {
        "dest_recent_dep_delay",
        "minutes_since_dest_departure",
        "carrier_origin_recent_dep_delay",
    }
    assert with_context.any(axis=1).mean() < 0.005
    assert alone.any(axis=1).mean() > 0.04  # the first day of the month, mostly
    assert alone["tail_prev_leg_delay"].any() and not with_context["tail_prev_leg_delay"].any()
