"""Declared schemas of the tables the pipeline stores, as pandera ``DataFrameSchema`` objects.

Each schema names every column with its dtype, the values it may take and the key that
identifies a row. The bounds are physical or documented limits, checked against the real
2013 data (every real month passes with a margin), not fitted to it: a distance is positive,
a time of day is HHMM, a month is 1-12, a probability is in [0, 1]. The allowed carriers and
airports are those the 2013 feed contains: a new code is refused until it is added here.

The raw assets validate each landed file against these schemas before storing it; the
Dagster types built from them (dagster-pandera) show the columns in the UI and check every
stored value again. The natural keys (``*_KEY``) are checked apart, by the ``duplicates``
check, so that a duplicated row is reported once, with its key. No dagster import here.
"""

from __future__ import annotations

import pandera.pandas as pa

CARRIERS = (
    "9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL",
    "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV",
)  # fmt: skip
"""Carriers flying from New York in 2013 (the feed's ``airlines`` table)."""

ORIGINS = ("EWR", "JFK", "LGA")
"""The three New York airports the feed covers."""

AIRPORT_CODE = r"^[A-Z]{3}$"
FLIGHT_KEY = ("year", "month", "day", "carrier", "flight", "origin")
"""A flight: a carrier's flight number departs an airport at most once a day."""
WEATHER_KEY = ("origin", "time_hour")
"""An observation: one per airport and hour."""
FEATURE_KEY = ("sched_dep_utc", "carrier_flight")
"""A feature row: one flight number departs once at a given minute."""

UTC = "datetime64[ns, UTC]"


def _hhmm(name: str, *, nullable: bool, low: int = 0) -> pa.Column:
    """A clock time written HHMM (2400 is midnight at the end of the day)."""
    return pa.Column(
        "float32" if nullable else "int16",
        checks=[
            pa.Check.in_range(low, 2400),
            pa.Check(lambda v: v % 100 < 60, element_wise=False, error="minutes below 60"),
        ],
        nullable=nullable,
        description=f"{name}, local time HHMM",
    )


def _minutes(description: str, low: float, high: float) -> pa.Column:
    return pa.Column(
        "float32", pa.Check.in_range(low, high), nullable=True, description=description
    )


RAW_FLIGHTS = pa.DataFrameSchema(
    name="raw_flights",
    description="A month's departures from New York, as the feed delivers them, typed.",
    columns={
        "year": pa.Column("int16", pa.Check.in_range(1990, 2100)),
        "month": pa.Column("int8", pa.Check.in_range(1, 12)),
        "day": pa.Column("int8", pa.Check.in_range(1, 31)),
        "dep_time": _hhmm("actual departure", nullable=True, low=1),
        "sched_dep_time": _hhmm("scheduled departure", nullable=False),
        # A departure may leave a little early or up to a day late (max 2013: 1,301 min).
        "dep_delay": _minutes("departure delay, minutes", -120, 24 * 60 + 300),
        "arr_time": _hhmm("actual arrival", nullable=True, low=1),
        "sched_arr_time": _hhmm("scheduled arrival", nullable=False),
        "arr_delay": _minutes("arrival delay, minutes (the label's source)", -180, 24 * 60 + 300),
        "carrier": pa.Column("category", pa.Check.isin(CARRIERS), description="IATA carrier"),
        "flight": pa.Column("int16", pa.Check.in_range(1, 9999), description="flight number"),
        "tailnum": pa.Column(
            "string", pa.Check.str_matches(r"^[A-Z0-9]{2,7}$"), nullable=True, description="tail"
        ),
        "origin": pa.Column("category", pa.Check.isin(ORIGINS), description="NYC airport"),
        "dest": pa.Column("category", pa.Check.str_matches(AIRPORT_CODE), description="FAA code"),
        "air_time": _minutes("minutes in the air", 1, 24 * 60),
        "distance": pa.Column("int16", pa.Check.in_range(1, 6000), description="miles"),
        "hour": pa.Column("int8", pa.Check.in_range(0, 23)),
        "minute": pa.Column("int8", pa.Check.in_range(0, 59)),
        "time_hour": pa.Column(UTC, description="scheduled departure hour, UTC"),
    },
    strict=True,
)

WEATHER_LIMITS: dict[str, tuple[float, float]] = {
    "temp": (-60.0, 140.0),
    "dewp": (-80.0, 100.0),
    "humid": (0.0, 100.0),
    "wind_dir": (0.0, 360.0),
    "wind_speed": (0.0, 250.0),
    "wind_gust": (0.0, 300.0),
    "precip": (0.0, 20.0),
    "pressure": (850.0, 1090.0),
    "visib": (0.0, 100.0),
}
"""Physically possible hourly readings (°F, %, degrees, mph, inches, millibars, miles)."""

RAW_WEATHER = pa.DataFrameSchema(
    name="raw_weather",
    description="A month's hourly weather at the three airports, typed.",
    columns={
        "origin": pa.Column("category", pa.Check.isin(ORIGINS)),
        "year": pa.Column("int16", pa.Check.in_range(1990, 2100)),
        "month": pa.Column("int8", pa.Check.in_range(1, 12)),
        "day": pa.Column("int8", pa.Check.in_range(1, 31)),
        "hour": pa.Column("int8", pa.Check.in_range(0, 23)),
        **{
            column: pa.Column("float32", pa.Check.in_range(low, high), nullable=True)
            for column, (low, high) in WEATHER_LIMITS.items()
        },
        "time_hour": pa.Column(
            UTC, description="start of the reported hour, UTC; the row is known one hour later"
        ),
    },
    strict=True,
)

RAW_PLANES = pa.DataFrameSchema(
    name="raw_planes",
    description="Aircraft attributes by tail number.",
    columns={
        "tailnum": pa.Column("string", pa.Check.str_matches(r"^[A-Z0-9]{2,7}$"), unique=True),
        "year": pa.Column("float32", pa.Check.in_range(1900, 2100), nullable=True),
        "type": pa.Column("category", nullable=True),
        "manufacturer": pa.Column("category", nullable=True),
        "model": pa.Column("category", nullable=True),
        "engines": pa.Column("int8", pa.Check.in_range(0, 8)),
        "seats": pa.Column("int16", pa.Check.in_range(1, 1000)),
        "speed": pa.Column("float32", pa.Check.in_range(1, 2000), nullable=True),
        "engine": pa.Column("category", nullable=True),
    },
    strict=True,
)

_BETWEEN_0_1 = pa.Check.in_range(0.0, 1.0)

FLIGHT_FEATURES = pa.DataFrameSchema(
    name="flight_features",
    description="Each flight as known an hour before departure, with its label.",
    columns={
        "month": pa.Column("int8", pa.Check.in_range(1, 12)),
        "sched_dep_utc": pa.Column("datetime64[ns]", description="scheduled departure, UTC"),
        "carrier_flight": pa.Column(str, pa.Check.str_matches(r"^[A-Z0-9]{2}\d{1,4}$")),
        "tailnum": pa.Column("string", nullable=True),
        "carrier": pa.Column(str, pa.Check.isin(CARRIERS)),
        "origin": pa.Column(str, pa.Check.isin(ORIGINS)),
        "dest": pa.Column(str, pa.Check.str_matches(AIRPORT_CODE)),
        "plane_manufacturer": pa.Column(str, nullable=True),
        "plane_type": pa.Column(str, nullable=True),
        "plane_engine": pa.Column(str, nullable=True),
        "sched_hour": pa.Column(float, pa.Check.in_range(0, 23)),
        "sched_minute": pa.Column(float, pa.Check.in_range(0, 59)),
        "day_of_week": pa.Column(float, pa.Check.in_range(0, 6)),
        "distance": pa.Column(float, pa.Check.in_range(1, 6000)),
        "origin_flights_this_hour": pa.Column(float, pa.Check.ge(0)),
        "plane_age": pa.Column(float, pa.Check.in_range(0, 120), nullable=True),
        "plane_seats": pa.Column(float, pa.Check.in_range(1, 1000), nullable=True),
        "plane_engines": pa.Column(float, pa.Check.in_range(0, 8), nullable=True),
        **{
            column: pa.Column(float, pa.Check.in_range(low, high), nullable=True)
            for column, (low, high) in WEATHER_LIMITS.items()
        },
        "weather_age_minutes": pa.Column(
            float,
            pa.Check.in_range(0, 180),
            nullable=True,
            description="minutes since the origin's weather report became known (label + 1 h)",
        ),
        "origin_recent_dep_delay": pa.Column(float, nullable=True),
        "origin_recent_delayed_share": pa.Column(float, _BETWEEN_0_1, nullable=True),
        "minutes_since_origin_departure": pa.Column(float, pa.Check.ge(0), nullable=True),
        "origin_backlog": pa.Column(float, pa.Check.ge(0), nullable=True),
        "dest_recent_dep_delay": pa.Column(float, nullable=True),
        "minutes_since_dest_departure": pa.Column(float, pa.Check.ge(0), nullable=True),
        "carrier_origin_recent_dep_delay": pa.Column(float, nullable=True),
        "tail_prev_leg_delay": pa.Column(float, nullable=True),
        "tail_sched_gap_minutes": pa.Column(float, pa.Check.ge(0), nullable=True),
        "tail_leg_of_day": pa.Column(float, pa.Check.ge(1), nullable=True),
        "dest_recent_arr_delay": pa.Column(float, nullable=True),
        "dest_recent_arr_gain": pa.Column(
            float, nullable=True, description="mean arrival minus departure delay, last landings"
        ),
        "minutes_since_dest_landing": pa.Column(float, pa.Check.ge(0), nullable=True),
        "tail_prev_arr_delay": pa.Column(float, nullable=True),
        "tail_prev_arr_exact": pa.Column(
            float,
            pa.Check.isin([0.0, 1.0]),
            nullable=True,
            description="1: the previous leg's arrival delay is exact; 0: a lower bound",
        ),
        "tail_turn_slack_minutes": pa.Column(float, nullable=True),
        **{
            f"{group}_hist_{measure}": pa.Column(float, check, nullable=nullable)
            for group in ("flight", "route_hour")
            for measure, check, nullable in (
                ("arr_delay", pa.Check.ge(-1440), True),
                ("delayed_share", _BETWEEN_0_1, True),
                ("flights", pa.Check.ge(0), False),
            )
        },
        "is_delayed": pa.Column("int8", pa.Check.isin([0, 1]), description="arrived 15+ min late"),
    },
    strict=True,
    ordered=True,
)

FLIGHT_DELAY_PREDICTIONS = pa.DataFrameSchema(
    name="flight_delay_predictions",
    description="Each flight's delay probability and the registry version that scored it.",
    columns={
        "month": pa.Column("int8", pa.Check.in_range(1, 12)),
        "sched_dep_utc": pa.Column("datetime64[ns]"),
        "carrier_flight": pa.Column(str),
        "tailnum": pa.Column("string", nullable=True),
        "delay_probability": pa.Column("float64", _BETWEEN_0_1),
        "model_version": pa.Column("string", pa.Check.str_matches(r"^\d+$")),
        "is_delayed": pa.Column("int8", pa.Check.isin([0, 1]), nullable=True),
    },
    strict=True,
    ordered=True,
)

TABLES: dict[str, pa.DataFrameSchema] = {
    str(schema.name): schema
    for schema in (RAW_FLIGHTS, RAW_WEATHER, RAW_PLANES, FLIGHT_FEATURES, FLIGHT_DELAY_PREDICTIONS)
}
"""Every stored table's schema, by the name of the asset that stores it."""
