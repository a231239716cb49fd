"""The feature table's column names: the label, the model's inputs, the row keys.

Plain names, no pandas: the code location reads them when it loads (the drift settings'
defaults), and the feature, training and scoring code shares them.
"""

TARGET = "is_delayed"

CATEGORICAL_FEATURES: tuple[str, ...] = (
    "carrier",
    "origin",
    "dest",
    "plane_manufacturer",
    "plane_type",
    "plane_engine",
)
WEATHER_COLUMNS: tuple[str, ...] = (
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)
DEPARTURE_FEATURES: tuple[str, ...] = (
    "origin_recent_dep_delay",
    "origin_recent_delayed_share",
    "minutes_since_origin_departure",
    "origin_backlog",
    "dest_recent_dep_delay",
    "minutes_since_dest_departure",
    "carrier_origin_recent_dep_delay",
    "tail_prev_leg_delay",
)
"""Read from other flights' departures, as far as they had happened at the moment."""
ARRIVAL_FEATURES: tuple[str, ...] = (
    "dest_recent_arr_delay",
    "dest_recent_arr_gain",
    "minutes_since_dest_landing",
    "tail_prev_arr_delay",
    "tail_prev_arr_exact",
    "tail_turn_slack_minutes",
    "flight_hist_arr_delay",
    "flight_hist_delayed_share",
    "flight_hist_flights",
    "route_hour_hist_arr_delay",
    "route_hour_hist_delayed_share",
    "route_hour_hist_flights",
)
"""Read from other flights' arrivals, as far as they had landed at the moment."""
NUMERIC_FEATURES: tuple[str, ...] = (
    "sched_hour",
    "sched_minute",
    "day_of_week",
    "distance",
    "origin_flights_this_hour",
    "plane_age",
    "plane_seats",
    "plane_engines",
    *WEATHER_COLUMNS,
    "weather_age_minutes",
    *DEPARTURE_FEATURES,
    "tail_sched_gap_minutes",
    "tail_leg_of_day",
    *ARRIVAL_FEATURES,
)
FEATURE_COLUMNS: tuple[str, ...] = CATEGORICAL_FEATURES + NUMERIC_FEATURES
KEY_COLUMNS: tuple[str, ...] = ("month", "sched_dep_utc", "carrier_flight", "tailnum")
"""Identify a row and place it in time; not model inputs."""

SEASONAL_FEATURES: tuple[str, ...] = (
    *WEATHER_COLUMNS,
    "flight_hist_flights",
    "route_hour_hist_flights",
)
"""Features that move with the calendar: drift reports them, but they cannot fail it alone.
The weather, and the 28-day history's flight counts, which follow the schedule's calendar
and start from nothing in the data's first month (2013: PSI 0.26 and 0.36 for March against
January-February)."""
