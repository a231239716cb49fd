"""A larger landing zone made from the real one: K times the flights, same weather and planes.

Each month's file holds its real flights (copy 0, unchanged) and ``K - 1`` perturbed copies
of them, each copy's row written right after its real row, so the file keeps the source's
order (by day, then departure). A copy:

* moves each scheduled departure by a few minutes (the same shift moves the scheduled
  arrival, the actual times, ``hour``/``minute`` and ``time_hour``); a shift that would leave
  the local day, or land in an hour that a daylight-saving change skips or repeats, is not
  applied, so every flight keeps its day and month;
* adds a few minutes of noise to the departure delay, and a little more to the arrival delay
  (the same extra minutes go to ``air_time``), within the schema's bounds; the actual times
  move by the schedule's shift plus the delay's change (wrapping over midnight), so they
  stay the scheduled ones plus the delays; cancelled flights stay cancelled;
* permutes the month's tail numbers among themselves, one bijection per copy, within
  classes of tails flown mostly by the same carrier and alike in being (or not being) in
  the planes table: every tail is real, joins the planes table when the real one did, flies
  for its carrier, and each copy's rotations are as consistent as the real ones;
* numbers its flights with the carrier's numbers that no real flight of that day uses, so the
  natural key (year, month, day, carrier, flight, origin) stays unique, and so does the
  features' key (scheduled departure in UTC, carrier and flight).

Each month draws from its own generator, seeded by ``(seed, month)``: a month's file depends
only on the seed, the scale and that month's real rows. No dagster import here.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_assets.landing import layout
from mlops_assets.landing.layout import LandingError, SeedResult

MAX_SHIFT = 10
"""Largest move of a scheduled departure, minutes (either way)."""
DEP_DELAY_NOISE = 3
"""Largest change of a departure delay, minutes (either way)."""
AIR_TIME_NOISE = 2
"""Largest change of the time between departure and arrival, minutes (either way)."""
DEP_DELAY_BOUNDS = (-120, 24 * 60 + 300)
"""Departure delays the raw schema accepts (``schemas.RAW_FLIGHTS``)."""
ARR_DELAY_BOUNDS = (-180, 24 * 60 + 300)
"""Arrival delays the raw schema accepts (``schemas.RAW_FLIGHTS``)."""
MAX_FLIGHT_NUMBER = 9999
LOCAL_TIMEZONE = "America/New_York"
"""The feed's clock times are local to the New York airports; ``time_hour`` is UTC."""
MINUTES_PER_DAY = 24 * 60
TIME_HOUR_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _minute_of_day(hhmm: np.ndarray) -> np.ndarray:
    return (hhmm // 100) * 60 + hhmm % 100


def _shift_hhmm(hhmm: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """Add minutes to HHMM clock times, wrapping over midnight (written 2400, as the feed does)."""
    moved = (_minute_of_day(hhmm) + minutes) % MINUTES_PER_DAY
    clock = (moved // 60) * 100 + moved % 60
    return np.where(clock == 0, 2400, clock)


def _interleave(real: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """Real row 0, its copies, real row 1, its copies... (``copies`` has shape (K - 1, n))."""
    return np.concatenate([real[np.newaxis, :], copies], axis=0).T.reshape(-1)


def _month_of(frame: pd.DataFrame, month: int) -> tuple[int, str]:
    years = frame["year"].unique()
    months = frame["month"].unique()
    if len(years) != 1 or list(months) != [month]:
        raise LandingError(
            f"scale_month(month={month}) needs the flights of that one month; got years "
            f"{sorted(int(y) for y in years)} and months {sorted(int(m) for m in months)}"
        )
    year = int(years[0])
    return year, layout.month_key(year, month)


def _time_hour_table(year: int, month: int) -> tuple[np.ndarray, np.ndarray]:
    """``time_hour`` of each local hour of the month, indexed by ``(day - 1) * 24 + hour``.

    Returns:
        The UTC hours as the feed writes them, and whether each local hour exists exactly
        once (False for the hour a daylight-saving change skips or repeats).
    """
    days = pd.Period(year=year, month=month, freq="M").days_in_month
    day, hour = np.divmod(np.arange(days * 24), 24)
    local = pd.to_datetime(
        pd.DataFrame({"year": year, "month": month, "day": day + 1, "hour": hour})
    )
    utc = local.dt.tz_localize(LOCAL_TIMEZONE, ambiguous="NaT", nonexistent="NaT").dt.tz_convert(
        "UTC"
    )
    return utc.dt.strftime(TIME_HOUR_FORMAT).to_numpy(dtype=object), utc.notna().to_numpy()


def _tail_permutations(
    flights: pd.DataFrame,
    known_tails: Collection[str],
    copies: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One bijection of the month's tails per copy, within classes of like planes.

    A class is the tails whose most frequent carrier of the month is the same and that are
    all in, or all out of, the planes table: a copy's flight keeps a plane of its carrier
    whose attributes the planes table knows exactly when the real one's are known.

    Returns:
        Each row's tail code (-1 when missing), the tails (sorted), and the permutations of
        the codes, one row per copy.
    """
    codes, uniques = pd.factorize(flights["tailnum"], sort=True)
    tails = np.asarray(uniques, dtype=object)
    flown = pd.DataFrame({"tail": codes, "carrier": flights["carrier"].to_numpy()})
    flown = flown[flown["tail"] >= 0]
    legs = flown.groupby(["tail", "carrier"], sort=True).size().rename("legs").reset_index()
    # Most legs first, then the carrier's code: a deterministic main carrier per tail.
    legs = legs.sort_values(["tail", "legs", "carrier"], ascending=[True, False, True])
    main_carrier = legs.drop_duplicates("tail")["carrier"].to_numpy()
    known = pd.Series(tails).isin(set(known_tails)).to_numpy()
    _, cls = np.unique(
        np.char.add(main_carrier.astype(str), known.astype(str)), return_inverse=True
    )
    members = np.argsort(cls, kind="stable")
    bounds = np.flatnonzero(np.diff(cls[members])) + 1
    classes = np.split(members, bounds)
    permutations = np.tile(np.arange(len(tails)), (copies, 1))
    for row in permutations:
        for group in classes:
            row[group] = rng.permutation(group)
    return codes, tails, permutations


def _synthetic_flight_numbers(
    frame: pd.DataFrame, scale: int, month: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per (day, carrier) group, the numbers its real flights leave free, and each row's group.

    Grouping by day and carrier, not by origin as the natural key would allow, keeps a new
    number to one airport a day: two copies from two airports could otherwise leave at the
    same minute under the same number, which the features' key (departure minute, carrier
    and flight) forbids.

    Returns:
        The free numbers of every group, concatenated, each group's run as long as its
        synthetic rows (``(scale - 1) * rows``), and the group of each real row.

    Raises:
        LandingError: When a group has fewer free numbers than synthetic rows (the message
            names the group that limits the scale most).
    """
    grouped = frame.groupby(["day", "carrier"], sort=True)
    group = grouped.ngroup().to_numpy()
    used = grouped["flight"].unique()
    sizes = grouped.size()
    free_counts = MAX_FLIGHT_NUMBER - used.map(len)
    allowed = free_counts // sizes + 1
    if int(allowed.min()) < scale:
        day, carrier = allowed.idxmin()
        rows = frame[(frame["day"] == day) & (frame["carrier"] == carrier)]
        origins = ", ".join(sorted(rows["origin"].unique()))
        raise LandingError(
            f"flights {month}: --scale {scale} needs {(scale - 1) * len(rows)} new flight numbers "
            f"for carrier {carrier} on day {day} (origins {origins}: {len(rows)} real flights), "
            f"but only {int(free_counts[(day, carrier)])} of 1..{MAX_FLIGHT_NUMBER} are free; "
            f"{month} allows at most --scale {int(allowed.min())}"
        )
    pools = []
    for (day, carrier), flights in used.items():
        taken = np.zeros(MAX_FLIGHT_NUMBER + 1, dtype=bool)
        taken[flights] = True
        free = np.flatnonzero(~taken[1:]) + 1
        pools.append(free[: (scale - 1) * int(sizes[(day, carrier)])])
    return np.concatenate(pools), group


def _pool_index(groups: np.ndarray) -> np.ndarray:
    """Where each row's number sits in the per-group pools laid end to end (in group order).

    Each group's pool is as long as the group, so a row's index is its place in a stable sort
    by group: its group's start plus its rank among the group's rows, in row order.
    """
    order = np.argsort(groups, kind="stable")
    index = np.empty_like(order)
    index[order] = np.arange(len(groups))
    return index


def scale_month(
    flights_of_month: pd.DataFrame,
    scale: int,
    seed: int,
    month: int,
    *,
    known_tails: Collection[str],
) -> pd.DataFrame:
    """The month's real flights and ``scale - 1`` perturbed copies of them (see the module).

    Args:
        flights_of_month: One month of the feed's flights, as the source delivers them.
        scale: How many times the rows to return (1: the real rows, unchanged).
        seed: The seed; with ``month`` it seeds this month's generator.
        month: The month number of ``flights_of_month``.
        known_tails: The planes table's tail numbers (permuted among themselves only).

    Returns:
        ``scale * len(flights_of_month)`` rows with the input's columns and dtypes: row
        ``i * scale`` is real row ``i`` and rows ``i * scale + c`` its copies ``c = 1..scale-1``.

    Raises:
        LandingError: On a scale below 1, rows of other months, or a scale that needs more
            flight numbers than a (day, carrier) has free (the message names them).
    """
    if scale < 1:
        raise LandingError(f"the scale must be a whole number of at least 1, got {scale}")
    year, name = _month_of(flights_of_month, month)
    real = flights_of_month.reset_index(drop=True)
    if scale == 1:
        return real
    pool, group = _synthetic_flight_numbers(real, scale, name)
    copies = scale - 1
    n = len(real)
    rng = np.random.default_rng([seed, month])

    tail_codes, tail_values, permutations = _tail_permutations(real, known_tails, copies, rng)
    shift = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(copies, n))
    dep_noise = rng.integers(-DEP_DELAY_NOISE, DEP_DELAY_NOISE + 1, size=(copies, n))
    air_noise = rng.integers(-AIR_TIME_NOISE, AIR_TIME_NOISE + 1, size=(copies, n))

    # The scheduled departure moves within its local day, to an hour that exists once.
    day = real["day"].to_numpy()
    departure = real["hour"].to_numpy() * 60 + real["minute"].to_numpy()
    moved = departure + shift
    hour_text, hour_exists = _time_hour_table(year, month)
    inside = (moved >= 0) & (moved < MINUTES_PER_DAY)
    slot = (day - 1) * 24 + np.clip(moved, 0, MINUTES_PER_DAY - 1) // 60
    shift = np.where(inside & hour_exists[slot], shift, 0)
    moved = departure + shift
    hour, minute = np.divmod(moved, 60)
    time_hour = hour_text[(day - 1) * 24 + hour]

    dep_delay = real["dep_delay"].to_numpy(dtype=np.float64)
    arr_delay = real["arr_delay"].to_numpy(dtype=np.float64)
    new_dep_delay = np.clip(dep_delay + dep_noise, *DEP_DELAY_BOUNDS)
    dep_change = np.nan_to_num(new_dep_delay - dep_delay)
    new_arr_delay = np.clip(arr_delay + dep_change + air_noise, *ARR_DELAY_BOUNDS)
    arr_change = np.where(np.isnan(arr_delay), dep_change, new_arr_delay - arr_delay)
    air_time = real["air_time"].to_numpy(dtype=np.float64)
    new_air_time = np.maximum(air_time + (arr_change - dep_change), 1.0)

    tail_copies = np.full((copies, n), None, dtype=object)
    if len(tail_values):
        flown = tail_codes >= 0
        tail_copies[:, flown] = tail_values[permutations[:, tail_codes[flown]]]
    flight_copies = pool[_pool_index(np.tile(group, copies))]

    columns = {
        "dep_time": _shift_hhmm(real["dep_time"].to_numpy(dtype=np.float64), shift + dep_change),
        "sched_dep_time": hour * 100 + minute,
        "dep_delay": new_dep_delay,
        "arr_time": _shift_hhmm(real["arr_time"].to_numpy(dtype=np.float64), shift + arr_change),
        "sched_arr_time": _shift_hhmm(real["sched_arr_time"].to_numpy(), shift),
        "arr_delay": new_arr_delay,
        "flight": flight_copies.reshape(copies, n),
        "tailnum": tail_copies,
        "air_time": new_air_time,
        "hour": hour,
        "minute": minute,
        "time_hour": time_hour,
    }
    out = {}
    for column in real.columns:
        values = real[column].to_numpy()
        if column in columns:
            out[column] = _interleave(values, columns[column].astype(values.dtype))
        else:
            out[column] = np.repeat(values, scale)
    return pd.DataFrame(out, columns=real.columns)


def _last_month(through: str | None) -> int:
    if through is None:
        return 12
    year, last = layout.parse_month(through)
    if year != layout.DATA_YEAR:
        raise LandingError(
            f"--through {through}: the data covers {layout.DATA_YEAR}-01 to {layout.DATA_YEAR}-12"
        )
    return last


def seed_scaled_landing_zone(
    landing_dir: Path,
    scale: int,
    seed: int = 0,
    through: str | None = None,
    force: bool = False,
) -> list[SeedResult]:
    """Land ``scale`` times the 2013 flights, one month at a time; the weather and planes as is.

    The planes and weather files are byte for byte those of
    :func:`mlops_assets.landing.layout.seed_landing_zone`, and so are the flights at scale 1.

    Args:
        landing_dir: The landing-zone root.
        scale: How many times the real flights each month holds (at least 1).
        seed: Seeds the perturbations; the same seed gives the same bytes.
        through: Last month to land (``YYYY-MM``); all twelve months when None.
        force: Overwrite files whose content differs instead of refusing.

    Returns:
        One result per file, in the order written (planes, flights, weather).

    Raises:
        LandingError: On a bad scale, seed or month, a scale some day's flight numbers cannot
            hold, or a differing file without ``force``.
    """
    if scale < 1:
        raise LandingError(f"--scale must be a whole number of at least 1, got {scale}")
    if seed < 0:
        raise LandingError(f"--seed must be a whole number of at least 0, got {seed}")
    last = _last_month(through)
    planes = layout.read_source_table("planes")
    results = [
        layout.land_bytes(landing_dir / layout.PLANES_FILE, layout.to_gzip_csv(planes), force=force)
    ]
    known_tails = set(planes["tailnum"].dropna())
    for table in layout.MONTHLY_TABLES:
        source = layout.read_source_table(table)  # type: ignore[arg-type]
        for month_number, rows in source.groupby("month", sort=True):
            month = int(month_number)
            if month > last:
                break
            landed = (
                scale_month(rows, scale, seed, month, known_tails=known_tails)
                if table == "flights"
                else rows
            )
            path = layout.monthly_file(
                landing_dir, table, layout.month_key(layout.DATA_YEAR, month)
            )
            results.append(layout.land_bytes(path, layout.to_gzip_csv(landed), force=force))
    return results
