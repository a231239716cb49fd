"""Feature rows read straight from a landing zone, month by month, without Dagster.

For the scripts and measurements that compute what the partitions compute (the plain
script of ``benchmarks/``, the gate's false-promotion trials).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlops_assets.landing import layout
from mlops_assets.ml import quality, raw, schemas
from mlops_assets.ml.features import build_month_features


def month_features(landing_dir: Path, months: list[str]) -> dict[str, pd.DataFrame]:
    """Each month's feature rows, month by month as the partitions compute them.

    Each month's files read once, impossible weather readings blanked, the month's features
    built after the last days of the month before (``raw.with_context``).
    """
    planes = raw.read_raw_csv(landing_dir / layout.PLANES_FILE, raw.PLANES_SCHEMA)
    by_month: dict[str, pd.DataFrame] = {}
    previous: tuple[pd.DataFrame, pd.DataFrame] | None = None
    for month in months:
        flights = raw.read_raw_csv(
            layout.monthly_file(landing_dir, "flights", month), raw.FLIGHTS_SCHEMA
        )
        weather, _ = quality.mask_impossible(
            raw.read_raw_csv(
                layout.monthly_file(landing_dir, "weather", month), raw.WEATHER_SCHEMA
            ),
            schemas.WEATHER_LIMITS,
        )
        by_month[month], _ = build_month_features(
            month,
            raw.with_context(flights, previous[0] if previous else None),
            raw.with_context(weather, previous[1] if previous else None),
            planes,
        )
        previous = (flights, weather)
    return by_month
