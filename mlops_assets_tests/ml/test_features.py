"""Feature engineering: hand-verified joins, exclusions and the no-leakage guarantee."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.landing import layout
from mlops_assets.ml import features as features_module
from mlops_assets.ml import raw
from mlops_assets.ml.columns import (
    ARRIVAL_FEATURES,
    DEPARTURE_FEATURES,
    FEATURE_COLUMNS,
    TARGET,
    WEATHER_COLUMNS,
)
from mlops_assets.ml.features import (
    FeatureSettings,
    airport_time_zones,
    build_features,
    build_month_features,
    weather_known_at,
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
"""Hourly rows labelled 08:00-10:00 UTC (known 09:00-11:00); each measure equals the hour."""


@pytest.mark.parametrize(
    ("lead", "time_hour", "minute", "expected_label", "expected_age"),
    [
        (60, "10:00", 30, "08:00", 30),  # moment 09:30: the 09:00 row is known at 10:00 only
        (0, "10:00", 30, "09:00", 30),  # moment 10:30: the 09:00 row, known since 10:00
        (30, "10:00", 30, "09:00", 0),  # moment 10:00: a row known at the moment counts
        (1, "10:00", 0, "08:00", 59),  # moment 09:59: the 09:00 row ends at 09:51, known 10:00
        (0, "14:00", 0, "10:00", 180),  # moment 14:00: the last row is three hours old
        (0, "14:00", 1, None, None),  # moment 14:01: older than three hours: missing
        (150, "10:00", 0, None, None),  # moment 07:30: no row known yet: missing
    ],
)
def test_a_weather_row_is_known_one_hour_after_its_label(
    lead: int,
    time_hour: str,
    minute: int,
    expected_label: str | None,
    expected_age: int | None,
) -> None:
    flights = raw_frame([raw_flight(time_hour=f"2013-01-01T{time_hour}:00Z", minute=minute)])
    features, _ = build_features(flights, WEATHER, PLANES, FeatureSettings(lead_time_minutes=lead))
    if expected_label is None:
        assert features[[*WEATHER_COLUMNS, "weather_age_minutes"]].isna().all(axis=None)
        return
    assert features.loc[0, "temp"] == int(expected_label[:2])  # each row's values = its hour
    assert features.loc[0, "weather_age_minutes"] == expected_age


def test_weather_availability_is_the_end_of_the_labelled_utc_hour() -> None:
    # The local hour 01:00 of 2013-11-03 happens twice (EDT, then EST): two UTC labels.
    labels = pd.Series(pd.to_datetime(["2013-11-03T05:00:00Z", "2013-11-03T06:00:00Z"], utc=True))
    assert weather_known_at(labels).tolist() == [
        pd.Timestamp("2013-11-03 06:00"),
        pd.Timestamp("2013-11-03 07:00"),
    ]


def test_weather_comes_from_the_flights_own_origin() -> None:
    flights = raw_frame([raw_flight(origin="LGA", minute=30), raw_flight(origin="EWR", minute=30)])
    features, _ = build_features(flights, WEATHER, PLANES, FeatureSettings(lead_time_minutes=0))
    assert features.loc[features["origin"] == "LGA", "visib"].item() == 0.25
    assert features.loc[features["origin"] == "EWR", "visib"].item() == 9.0


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


def test_a_landing_is_placed_in_utc_with_the_destination_time_zone() -> None:
    flights = raw_frame(
        [
            # 10:00Z = 05:00 in New York; 07:20 in Chicago (UTC-6) is 13:20Z; lands 10 late.
            raw_flight(flight=1, sched_arr_time=720, arr_delay=10.0),
            # Leaves 23:00 New York time (04:00Z on the 2nd); due 00:30 Chicago time on the 2nd.
            raw_flight(flight=2, hour=23, time_hour="2013-01-02T04:00:00Z", sched_arr_time=30),
            raw_flight(flight=3, dest="SJU", sched_arr_time=1400),  # no time zone known
        ]
    )
    clock = features_module.flight_clock(flights, 60)
    landing = features_module.landing_clock(flights, clock, airport_time_zones())
    assert list(landing["sched_arr_utc"].iloc[:2]) == [
        pd.Timestamp("2013-01-01 13:20"),
        pd.Timestamp("2013-01-02 06:30"),
    ]
    assert landing["landed_utc"].iloc[0] == pd.Timestamp("2013-01-01 13:30")
    assert landing["landed_utc"].iloc[2:].isna().all()


def test_destination_and_history_features_count_only_flights_landed_before_the_moment() -> None:
    # Target UA9 to ORD at 20:00Z, lead 60: moment 19:00Z. Chicago is UTC-6.
    flights = raw_frame(
        [
            # Left 10:05, due 11:00 CST = 17:00Z, landed 17:30Z: known at the moment.
            raw_flight(
                flight=9,
                time_hour="2013-01-01T10:00:00Z",
                dep_delay=5.0,
                sched_arr_time=1100,
                arr_delay=30.0,
            ),
            # Due 12:30 CST = 18:30Z, lands 19:15Z: not yet at the moment.
            raw_flight(
                flight=9,
                time_hour="2013-01-01T12:00:00Z",
                sched_arr_time=1230,
                arr_delay=45.0,
                tailnum="N2",
            ),
            raw_flight(
                flight=9, time_hour="2013-01-01T20:00:00Z", sched_arr_time=1600, tailnum="N3"
            ),
        ]
    )
    features, _ = build_features(flights, WEATHER, PLANES)
    target = features.iloc[2]
    assert target["dest_recent_arr_delay"] == 30.0
    assert target["dest_recent_arr_gain"] == 25.0  # arrived 30 late having left 5 late
    assert target["minutes_since_dest_landing"] == 90.0
    assert target["flight_hist_arr_delay"] == 30.0
    assert target["flight_hist_delayed_share"] == 1.0
    assert target["flight_hist_flights"] == 1.0
    assert target["route_hour_hist_flights"] == 1.0
    assert features.iloc[0]["flight_hist_flights"] == 0.0
    assert np.isnan(features.iloc[0]["flight_hist_arr_delay"])


def test_previous_arrival_is_exact_once_landed_and_a_flagged_bound_when_overdue() -> None:
    rows = [
        # N1 leaves 06:00Z, due 01:00 CST = 07:00Z, lands 07:20Z; next leg 10:00Z, moment 09:00Z.
        raw_flight(
            flight=1,
            tailnum="N1",
            time_hour="2013-01-01T06:00:00Z",
            sched_arr_time=100,
            arr_delay=20.0,
        ),
        raw_flight(flight=2, tailnum="N1", time_hour="2013-01-01T10:00:00Z"),
        # N2 leaves 08:00Z, due 02:30 CST = 08:30Z, lands 09:30Z: overdue at the 09:00Z moment.
        raw_flight(
            flight=3,
            tailnum="N2",
            time_hour="2013-01-01T08:00:00Z",
            sched_arr_time=230,
            arr_delay=60.0,
        ),
        raw_flight(flight=4, tailnum="N2", time_hour="2013-01-01T10:00:00Z"),
    ]
    features, _ = build_features(raw_frame(rows), WEATHER, PLANES)
    by_flight = features.set_index("carrier_flight")
    assert by_flight.loc["UA2", "tail_prev_arr_delay"] == 20.0
    assert by_flight.loc["UA2", "tail_prev_arr_exact"] == 1.0
    # Back at 07:20 + the 60-minute leg = 08:20: 100 minutes before 10:00.
    assert by_flight.loc["UA2", "tail_turn_slack_minutes"] == 100.0
    assert by_flight.loc["UA4", "tail_prev_arr_delay"] == 30.0  # at least 09:00 - 08:30
    assert by_flight.loc["UA4", "tail_prev_arr_exact"] == 0.0
    # Landed at 09:00 at the earliest, back 30 minutes later: 30 minutes before 10:00.
    assert by_flight.loc["UA4", "tail_turn_slack_minutes"] == 30.0
    assert np.isnan(by_flight.loc["UA1", "tail_prev_arr_exact"])


# The leakage test. Each input's availability is derived here from what the data means, not
# from the feature code's own clocks: a departure is known once it has happened (scheduled
# departure plus its delay); an arrival once the flight is at the gate (its actual arrival
# time ``arr_time``, a local clock time at the destination, the first such instant after the
# departure); a weather row labelled H reports on minutes 0-51 of H, its precipitation
# cumulated up to H:51, so it exists no earlier than H:52 (nycflights13's
# data-raw/weather.R). Everything not yet available at a flight's moment is scrambled, and
# that flight's features must not move.

WEATHER_REPORT_WINDOW = pd.Timedelta(minutes=52)
ARRIVAL_COLUMNS = ("arr_time", "arr_delay", "air_time")
SAMPLED_PER_BRANCH = 6


@dataclass(frozen=True)
class LeakSlice:
    """Four February days around the 2013 nor'easter: delays, cancellations and overdue legs."""

    flights: pd.DataFrame
    weather: pd.DataFrame
    planes: pd.DataFrame

    clocks: pd.DataFrame
    """When each flight was scheduled to leave and to land, left and landed (UTC), computed
    once by the honest feature code (a leaky variant under test must not change them)."""
    reported: pd.Series
    """When each weather row was reported, at the latest (UTC)."""


@pytest.fixture(scope="module")
def leak_slice(seeded_landing: Path) -> LeakSlice:
    def read(table: str, schema: dict[str, str]) -> pd.DataFrame:
        return raw.read_raw_csv(layout.monthly_file(seeded_landing, table, "2013-02"), schema)

    flights = read("flights", dict(raw.FLIGHTS_SCHEMA))
    flights = flights[flights["day"].between(7, 10)].reset_index(drop=True)
    weather = read("weather", dict(raw.WEATHER_SCHEMA))
    weather = weather[weather["day"].between(6, 10)].reset_index(drop=True)
    clocks = pd.DataFrame(
        {
            "scheduled": _scheduled(flights),
            "departed": _departed(flights),
            "landed": _landed(flights),
            "scheduled_arrival": _scheduled_arrival(flights),
        }
    )
    return LeakSlice(
        flights,
        weather,
        raw.read_raw_csv(seeded_landing / layout.PLANES_FILE, raw.PLANES_SCHEMA),
        clocks,
        _utc(weather["time_hour"]) + WEATHER_REPORT_WINDOW,
    )


def _utc(values: pd.Series) -> pd.Series:
    return values.dt.tz_convert("UTC").dt.tz_localize(None)


def _scheduled(flights: pd.DataFrame) -> pd.Series:
    return _utc(flights["time_hour"]) + pd.to_timedelta(flights["minute"].astype("int64"), "min")


def _scheduled_arrival(flights: pd.DataFrame) -> pd.Series:
    """The scheduled arrival in UTC (NaT where the destination's time zone is unknown)."""
    clock = features_module.flight_clock(flights, 0)
    return features_module.landing_clock(flights, clock, airport_time_zones())["sched_arr_utc"]


def _departed(flights: pd.DataFrame) -> pd.Series:
    """When each flight left (NaT for the cancelled): its scheduled departure plus its delay."""
    delay = flights["dep_delay"].astype("float64")
    return _scheduled(flights) + pd.to_timedelta(delay, unit="min")


def _landed(flights: pd.DataFrame) -> pd.Series:
    """When each flight reached the gate (NaT without an arrival): its ``arr_time`` at the
    destination's clock, on the first day that puts it after the departure."""
    left = _departed(flights)
    hhmm = flights["arr_time"].astype("float64")
    # NaN times are filled before conversion (pandas warns on NaN casts), then masked.
    known = hhmm.fillna(0.0)
    at = pd.to_datetime(flights[["year", "month", "day"]]) + pd.to_timedelta(
        (known // 100) * 60 + known % 100, unit="min"
    )
    at = at.where(hhmm.notna())
    zone = flights["dest"].astype(str).map(airport_time_zones())
    landed = pd.Series(pd.NaT, index=flights.index, dtype="datetime64[ns]")
    for name, rows in at.groupby(zone):
        utc = rows.dt.tz_localize(str(name), ambiguous="NaT", nonexistent="shift_forward")
        landed.loc[rows.index] = utc.dt.tz_convert("UTC").dt.tz_localize(None)
    for _ in range(2):
        landed = landed.where(~(landed <= left), landed + pd.Timedelta(days=1))
    return landed.where(flights["arr_delay"].notna() & left.notna())


def _branches(flights: pd.DataFrame, lead: int) -> dict[str, np.ndarray]:
    """The flights (with an arrival) whose moment reaches each branch of the feature code."""
    sched = _scheduled(flights)
    moment = sched - pd.Timedelta(minutes=lead)
    left = _departed(flights)
    landed = _landed(flights)
    sched_arr = _scheduled_arrival(flights)
    legs = pd.DataFrame(
        {
            "tail": flights["tailnum"],
            "sched": sched,
            "left": left,
            "landed": landed,
            "due": sched_arr,
        }
    )
    legs = legs.dropna(subset=["tail"]).sort_values(["tail", "sched"], kind="stable")
    previous = (
        legs.groupby("tail")[["sched", "left", "landed", "due"]].shift(1).reindex(flights.index)
    )
    same_rotation = (sched - previous["sched"]) <= pd.Timedelta(hours=24)
    prev_left = same_rotation & (previous["left"] <= moment)
    prev_overdue = same_rotation & (previous["sched"] < moment) & ~prev_left
    prev_landed = same_rotation & (previous["landed"] < moment)
    prev_arrival_overdue = same_rotation & (previous["due"] < moment) & ~prev_landed
    day = flights["day"].to_numpy()
    origin = flights["origin"].astype(str).to_numpy()
    cancelled = flights["dep_delay"].isna().to_numpy()
    waiting = np.zeros(len(flights), dtype=bool)
    cancelled_earlier = np.zeros(len(flights), dtype=bool)
    for i in range(len(flights)):
        peers = (origin == origin[i]) & (day == day[i]) & (sched < moment.iloc[i]).to_numpy()
        not_left = ~(left <= moment.iloc[i]).to_numpy()
        waiting[i] = (peers & not_left & ~cancelled).any()
        cancelled_earlier[i] = (peers & cancelled).any()
    label_minute = (moment - moment.dt.floor("h")).dt.total_seconds() / 60
    branches = {
        "previous leg left": prev_left.to_numpy(),
        # Overdue: due before the moment, not left by then (late, or cancelled: the scramble
        # makes some cancelled legs leave after the moment and some late ones never leave).
        "previous leg overdue": prev_overdue.to_numpy(),
        "first leg": ~same_rotation.to_numpy(),
        "previous leg landed": prev_landed.to_numpy(),
        "previous leg's arrival overdue": prev_arrival_overdue.to_numpy(),
        "departures overdue at the origin": waiting,
        "cancellations earlier at the origin": cancelled_earlier,
        "current hour's weather not reported": (label_minute < 52).to_numpy(),
        "current hour's weather reported": (label_minute >= 52).to_numpy(),
    }
    has_arrival = flights["arr_delay"].notna().to_numpy()
    return {name: mask & has_arrival for name, mask in branches.items()}


def _sample(flights: pd.DataFrame, lead: int, rng: np.random.Generator) -> np.ndarray:
    """Flights from every branch, and from every day and part of the day."""
    picked: list[int] = []
    for name, mask in _branches(flights, lead).items():
        candidates = np.flatnonzero(mask)
        assert len(candidates) >= SAMPLED_PER_BRANCH, f"the slice does not reach {name!r}"
        picked.extend(rng.choice(candidates, SAMPLED_PER_BRANCH, replace=False))
    has_arrival = flights["arr_delay"].notna()
    for _, group in flights[has_arrival].groupby([flights["day"], flights["hour"] // 6]):
        picked.append(int(rng.choice(group.index.to_numpy())))
    return np.unique(picked)


def _scramble_unknown(
    data: LeakSlice, i: int, moment: pd.Timestamp, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rewrite everything not available at ``moment``, keeping what was."""
    flights = data.flights.copy()
    clocks = data.clocks
    n = len(flights)
    # A departure not yet happened stays in the future (or becomes a cancellation), and a
    # cancelled flight may now leave after the moment. The flight's own departure, known or
    # not, is never a feature: it is rewritten too.
    pending = ~(clocks["departed"] <= moment).to_numpy()
    pending[i] = True
    floor = (moment - clocks["scheduled"]).dt.total_seconds().to_numpy() / 60
    new_delay = np.maximum(floor, -30.0) + rng.integers(1, 300, n)  # strictly after it
    new_delay[rng.random(n) < 0.2] = np.nan
    flights["dep_delay"] = np.where(pending, new_delay, flights["dep_delay"]).astype("float32")
    # An arrival not yet at the gate lands after the moment (or is diverted); the flight's
    # own arrival is rewritten too, and it keeps one, or it would have no feature row.
    unlanded = ~(clocks["landed"] < moment).to_numpy()
    unlanded[i] = True
    floor = (moment - clocks["scheduled_arrival"]).dt.total_seconds().to_numpy() / 60
    new_arrival = np.maximum(np.nan_to_num(floor, nan=0.0), -60.0) + rng.integers(1, 300, n)
    for column in ARRIVAL_COLUMNS:
        noise = rng.uniform(0, 2400, n)
        flights[column] = np.where(unlanded, noise, flights[column]).astype("float32")
    flights["arr_delay"] = np.where(unlanded, new_arrival, data.flights["arr_delay"]).astype(
        "float32"
    )
    diverted = unlanded & (rng.random(n) < 0.05)
    diverted[i] = False
    flights.loc[diverted, "arr_delay"] = np.nan
    weather = data.weather.copy()
    unreported = (data.reported > moment).to_numpy()
    for column in WEATHER_COLUMNS:
        values = rng.uniform(0, 100, len(weather))
        weather[column] = np.where(unreported, values, weather[column]).astype("float32")
    lost = unreported & (rng.random(len(weather)) < 0.2)  # a late report may never come
    return flights, weather[~lost].reset_index(drop=True)


def _leaks(
    data: LeakSlice, lead: int, seed: int, enough: int | None = None
) -> dict[str, list[str]]:
    """The sampled flights whose features move when unavailable inputs are scrambled (the
    first ``enough`` of them, when given: a positive control needs no more)."""
    settings = FeatureSettings(lead_time_minutes=lead)
    keys = ["carrier_flight", "sched_dep_utc"]
    baseline, _ = build_features(data.flights, data.weather, data.planes, settings)
    baseline = baseline.set_index(keys)
    rng = np.random.default_rng(seed)
    sched = data.clocks["scheduled"]
    found: dict[str, list[str]] = {}
    for i in _sample(data.flights, lead, rng):
        moment = sched.iloc[i] - pd.Timedelta(minutes=lead)
        flights, weather = _scramble_unknown(data, int(i), moment, rng)
        features, _ = build_features(flights, weather, data.planes, settings)
        key = (f"{data.flights.loc[i, 'carrier']}{data.flights.loc[i, 'flight']}", sched.iloc[i])
        got = features.set_index(keys).loc[key, list(FEATURE_COLUMNS)]
        expected = baseline.loc[key, list(FEATURE_COLUMNS)]
        moved = [c for c in FEATURE_COLUMNS if not _same(got[c], expected[c])]
        if moved:
            found[f"{key[0]} at {moment}"] = moved
            if len(found) == enough:
                break
    return found


def _same(a: object, b: object) -> bool:
    return bool((pd.isna(a) and pd.isna(b)) or a == b)


@pytest.mark.parametrize("lead", [60, 0])
def test_scrambling_what_is_not_yet_available_leaves_features_identical(
    leak_slice: LeakSlice, lead: int
) -> None:
    assert _leaks(leak_slice, lead, seed=7) == {}


def test_the_leakage_sample_exercises_every_arrival_feature(leak_slice: LeakSlice) -> None:
    # Scramble coverage: a feature the sampled flights never have cannot be caught leaking.
    baseline, _ = build_features(leak_slice.flights, leak_slice.weather, leak_slice.planes)
    sampled = _sample(leak_slice.flights, 60, np.random.default_rng(7))
    has_arrival = leak_slice.flights["arr_delay"].notna().to_numpy()
    rows = baseline.iloc[np.searchsorted(np.flatnonzero(has_arrival), sampled)]
    known = rows[list(ARRIVAL_FEATURES)].notna().sum()
    print(f"sampled flights {len(rows)}; known per arrival feature: {known.to_dict()}")
    assert (known >= SAMPLED_PER_BRANCH).all(), known[known < SAMPLED_PER_BRANCH]
    assert set(rows["tail_prev_arr_exact"].dropna()) == {0.0, 1.0}


def _weather_known_at_its_label(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule before the fix, give or take its boundary minute: a row known at its label."""
    monkeypatch.setattr(features_module, "WEATHER_REPORT_DELAY", pd.Timedelta(0))


def _departures_known_when_scheduled(monkeypatch: pytest.MonkeyPatch) -> None:
    """A delayed departure counted as known from its scheduled time on."""
    honest = features_module.flight_clock

    def leaky(flights: pd.DataFrame, lead_time_minutes: int) -> pd.DataFrame:
        clock = honest(flights, lead_time_minutes)
        return clock.assign(
            known_dep_utc=clock["sched_dep_utc"].where(clock["actual_dep_utc"].notna())
        )

    monkeypatch.setattr(features_module, "flight_clock", leaky)


def _arrivals_known_at_departure(monkeypatch: pytest.MonkeyPatch) -> None:
    """An arrival counted as known as soon as the flight has left."""
    honest = features_module.landing_clock

    def leaky(
        flights: pd.DataFrame, clock: pd.DataFrame, time_zones: Mapping[str, str]
    ) -> pd.DataFrame:
        landing = honest(flights, clock, time_zones)
        return landing.assign(
            known_arr_utc=clock["known_dep_utc"].where(landing["landed_utc"].notna())
        )

    monkeypatch.setattr(features_module, "landing_clock", leaky)


@pytest.mark.parametrize(
    ("leaky_variant", "leaking"),
    [
        (_weather_known_at_its_label, {*WEATHER_COLUMNS, "weather_age_minutes"}),
        (_departures_known_when_scheduled, {*DEPARTURE_FEATURES, *ARRIVAL_FEATURES}),
        (_arrivals_known_at_departure, set(ARRIVAL_FEATURES)),
    ],
)
def test_the_leakage_test_catches_a_leaky_feature(
    leak_slice: LeakSlice,
    monkeypatch: pytest.MonkeyPatch,
    leaky_variant: Callable[[pytest.MonkeyPatch], None],
    leaking: set[str],
) -> None:
    leaky_variant(monkeypatch)
    found = _leaks(leak_slice, 60, seed=7, enough=SAMPLED_PER_BRANCH)
    moved = set().union(*found.values())
    assert moved and moved <= leaking
    assert len(found) >= SAMPLED_PER_BRANCH  # not one unlucky flight: a whole branch leaks


def test_the_rolling_means_of_all_groups_at_once_equal_each_group_s_own() -> None:
    """The one-pass rolling mean gives each group's own rolling mean, float for float."""
    values = pd.Series([5.0, 1.0, 7.5, 0.1, 2.0, 3.3, 9.0, 0.2], index=[7, 3, 5, 0, 1, 2, 6, 4])
    groups = pd.Series(["JFK", "EWR", "JFK", None, "EWR", "JFK", "LGA", "JFK"], index=values.index)
    expected = values.groupby(groups).transform(lambda s: s.rolling(3, min_periods=1).mean())
    got = features_module._rolling_mean(values, groups, 3)
    pd.testing.assert_series_equal(got, expected, check_exact=True, check_names=False)
    assert pd.isna(got.iloc[3])  # a row without a group has no mean
    assert got.iloc[5] == pytest.approx((5.0 + 7.5 + 3.3) / 3)  # its group's last three


def test_own_departure_and_arrival_columns_are_not_features() -> None:
    forbidden = {"dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"}
    assert forbidden.isdisjoint(FEATURE_COLUMNS)


def test_a_month_built_on_its_own_with_context_rows_matches_a_build_of_both_months(
    seeded_landing: Path,
) -> None:
    def read(table: str, month: str, schema: dict[str, str]) -> pd.DataFrame:
        return raw.read_raw_csv(layout.monthly_file(seeded_landing, table, month), schema)

    planes = raw.read_raw_csv(seeded_landing / layout.PLANES_FILE, raw.PLANES_SCHEMA)
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
    # Only "last departures" and "last landings" look-backs older than the context (rare
    # destinations) differ; the 28-day histories fit in it.
    assert set(with_context.columns[with_context.any()]) <= {
        "dest_recent_dep_delay",
        "minutes_since_dest_departure",
        "carrier_origin_recent_dep_delay",
        "dest_recent_arr_delay",
        "dest_recent_arr_gain",
        "minutes_since_dest_landing",
    }
    assert with_context.any(axis=1).mean() < 0.005
    assert alone.any(axis=1).mean() > 0.04  # the first day of the month, mostly
    assert alone["tail_prev_leg_delay"].any() and not with_context["tail_prev_leg_delay"].any()
