"""The scale generator: `mlops-assets seed --scale K`, K times the flights from the real ones."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.cli import commands
from mlops_assets.landing import layout, scale
from mlops_assets.ml import quality, raw, schemas
from mlops_assets.ml.features import flight_clock


@pytest.fixture(scope="module")
def source_flights() -> pd.DataFrame:
    """The feed's 2013 flights, read once for the module (do not modify)."""
    return layout.read_source_table("flights")


@pytest.fixture(scope="module")
def plane_tails() -> set[str]:
    return set(layout.read_source_table("planes")["tailnum"])


@pytest.fixture(scope="module")
def plain_january(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planes and January landed by the plain seed (read-only)."""
    root = tmp_path_factory.mktemp("plain") / "landing"
    layout.seed_landing_zone(root, "2013-01")
    return root


def _days(flights: pd.DataFrame, month: int, days: range) -> pd.DataFrame:
    return flights[(flights["month"] == month) & flights["day"].isin(days)]


# New Year, and the days around both daylight-saving changes (10 March, 3 November).
SLICES = [(1, range(1, 4)), (3, range(9, 12)), (11, range(2, 5))]


def _minutes(hhmm: pd.Series) -> pd.Series:
    return (hhmm // 100) * 60 + hhmm % 100


def _copy(scaled: pd.DataFrame, k: int, c: int) -> pd.DataFrame:
    return scaled.iloc[c::k].reset_index(drop=True)


@pytest.mark.parametrize(("month", "days"), SLICES)
def test_a_scaled_month_holds_the_real_rows_then_k_minus_1_copies_of_each(
    source_flights: pd.DataFrame, plane_tails: set[str], month: int, days: range
) -> None:
    real = _days(source_flights, month, days).reset_index(drop=True)
    scaled = scale.scale_month(real, 4, 0, month, known_tails=plane_tails)
    assert len(scaled) == 4 * len(real)
    assert scaled.dtypes.equals(real.dtypes)
    pd.testing.assert_frame_equal(_copy(scaled, 4, 0), real)
    for c in (1, 2, 3):
        copy = _copy(scaled, 4, c)
        unchanged = ["year", "month", "day", "carrier", "origin", "dest", "distance"]
        pd.testing.assert_frame_equal(copy[unchanged], real[unchanged])
        # Cancelled flights stay cancelled; nothing missing is filled, nothing is blanked.
        pd.testing.assert_frame_equal(copy.isna(), real.isna())


@pytest.mark.parametrize(("month", "days"), SLICES)
def test_copies_move_schedules_and_delays_by_a_few_minutes_consistently(
    source_flights: pd.DataFrame, plane_tails: set[str], month: int, days: range
) -> None:
    real = _days(source_flights, month, days).reset_index(drop=True)
    scaled = scale.scale_month(real, 4, 3, month, known_tails=plane_tails)
    local = pd.to_datetime(scaled[["year", "month", "day", "hour"]])
    expected_hour = (
        local.dt.tz_localize(scale.LOCAL_TIMEZONE, ambiguous="raise", nonexistent="raise")
        .dt.tz_convert("UTC")
        .dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    assert (scaled["time_hour"] == expected_hour).all()
    assert (scaled["hour"] * 100 + scaled["minute"] == scaled["sched_dep_time"]).all()
    shifts = []
    for c in (1, 2, 3):
        copy = _copy(scaled, 4, c)
        shift = _minutes(copy["sched_dep_time"]) - _minutes(real["sched_dep_time"])
        assert shift.abs().max() <= scale.MAX_SHIFT
        assert (
            ((_minutes(copy["sched_arr_time"]) - _minutes(real["sched_arr_time"])) % 1440)
            .eq(shift % 1440)
            .all()
        )
        dep_change = (copy["dep_delay"] - real["dep_delay"]).fillna(0)
        assert dep_change.abs().max() <= scale.DEP_DELAY_NOISE
        arr_change = copy["arr_delay"] - real["arr_delay"]
        assert (arr_change - dep_change).abs().max() <= scale.AIR_TIME_NOISE
        air_change = (copy["air_time"] - real["air_time"]).dropna()
        assert air_change.equals((arr_change - dep_change).dropna())
        assert copy["air_time"].min() >= 1
        # The actual times move with the schedule and the delays (modulo midnight).
        moved_dep = (_minutes(copy["dep_time"]) - _minutes(real["dep_time"])) % 1440
        assert moved_dep.dropna().eq(((shift + dep_change) % 1440)[moved_dep.notna()]).all()
        arr_known = real["arr_delay"].notna()
        moved_arr = (_minutes(copy["arr_time"]) - _minutes(real["arr_time"])) % 1440
        assert moved_arr[arr_known].eq(((shift + arr_change) % 1440)[arr_known]).all()
        shifts.append(shift)
    assert pd.concat(shifts).nunique() == 2 * scale.MAX_SHIFT + 1


def test_tails_stay_real_and_each_copy_permutes_them(
    source_flights: pd.DataFrame, plane_tails: set[str]
) -> None:
    real = _days(source_flights, 1, range(1, 8)).reset_index(drop=True)
    scaled = scale.scale_month(real, 3, 0, 1, known_tails=plane_tails)
    month_tails = set(real["tailnum"].dropna())
    main_carrier = (
        real.groupby(["tailnum", "carrier"]).size().rename("legs").reset_index()
        .sort_values(["tailnum", "legs", "carrier"], ascending=[True, False, True])
        .drop_duplicates("tailnum").set_index("tailnum")["carrier"]
    )  # fmt: skip
    for c in (1, 2):
        pairs = pd.DataFrame(
            {"real": real["tailnum"], "copy": _copy(scaled, 3, c)["tailnum"]}
        ).dropna()
        mapping = pairs.drop_duplicates()
        assert mapping["real"].is_unique and mapping["copy"].is_unique  # a bijection
        assert set(mapping["copy"]) == month_tails
        assert (mapping["real"].isin(plane_tails) == mapping["copy"].isin(plane_tails)).all()
        assert (
            main_carrier[mapping["real"]].to_numpy() == main_carrier[mapping["copy"]].to_numpy()
        ).all()
        assert (mapping["real"] != mapping["copy"]).mean() > 0.9


def test_the_natural_and_feature_keys_stay_unique(
    source_flights: pd.DataFrame, plane_tails: set[str]
) -> None:
    real = _days(source_flights, 1, range(1, 8)).reset_index(drop=True)
    scaled = scale.scale_month(real, 20, 0, 1, known_tails=plane_tails)
    assert not scaled.duplicated(list(schemas.FLIGHT_KEY)).any()
    assert scaled["flight"].between(1, 9999).all()
    sched = flight_clock(scaled.assign(time_hour=pd.to_datetime(scaled["time_hour"])), 60)
    features_key = pd.DataFrame(
        {
            "sched_dep_utc": sched["sched_dep_utc"],
            "carrier_flight": scaled["carrier"] + scaled["flight"].astype(str),
        }
    )
    assert not features_key.duplicated().any()


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others(
    source_flights: pd.DataFrame, plane_tails: set[str]
) -> None:
    real = _days(source_flights, 2, range(1, 3))

    def landed(seed: int) -> bytes:
        return layout.to_gzip_csv(scale.scale_month(real, 3, seed, 2, known_tails=plane_tails))

    assert landed(7) == landed(7)
    assert landed(7) != landed(8)


def test_a_landed_scaled_month_passes_the_raw_reader_and_its_checks(
    tmp_path: Path, source_flights: pd.DataFrame, plain_january: Path
) -> None:
    root = tmp_path / "landing"
    results = scale.seed_scaled_landing_zone(root, 2, seed=1, through="2013-01")
    assert {r.action for r in results} == {"written"}
    assert [r.path.relative_to(root).as_posix() for r in results] == [
        "planes.csv.gz",
        "flights/2013-01.csv.gz",
        "weather/2013-01.csv.gz",
    ]
    for kept in ("planes.csv.gz", "weather/2013-01.csv.gz"):
        assert (root / kept).read_bytes() == (plain_january / kept).read_bytes()
    path = layout.monthly_file(root, "flights", "2013-01")
    flights = raw.read_raw_csv(path, raw.FLIGHTS_SCHEMA)
    assert len(flights) == 2 * int((source_flights["month"] == 1).sum())
    for outcome in (
        quality.schema_outcome(flights, schemas.RAW_FLIGHTS, str(path)),
        quality.month_outcome(flights, "2013-01", str(path)),
        quality.duplicates_outcome(flights, schemas.FLIGHT_KEY, str(path)),
    ):
        assert outcome.passed, outcome.summary


def test_scale_1_lands_exactly_the_plain_seed(tmp_path: Path, plain_january: Path) -> None:
    root = tmp_path / "landing"
    scale.seed_scaled_landing_zone(root, 1, seed=5, through="2013-01")
    landed = sorted(p.relative_to(root) for p in root.rglob("*.csv.gz"))
    assert landed == sorted(p.relative_to(plain_january) for p in plain_january.rglob("*.csv.gz"))
    for relative in landed:
        assert (root / relative).read_bytes() == (plain_january / relative).read_bytes()


def test_a_scale_the_flight_numbers_cannot_hold_names_the_group(
    source_flights: pd.DataFrame, plane_tails: set[str]
) -> None:
    # United flew 187 flights from New York on 27 November: 53 copies fit in 1..9999, 60 not.
    busiest = _days(source_flights, 11, range(27, 28))
    assert len(scale.scale_month(busiest, 53, 0, 11, known_tails=plane_tails)) == 53 * len(busiest)
    with pytest.raises(
        layout.LandingError,
        match=r"flights 2013-11: --scale 60 needs 11033 new flight numbers for carrier UA on "
        r"day 27 \(origins EWR, JFK, LGA: 187 real flights\).*2013-11 allows at most --scale 53",
    ):
        scale.scale_month(busiest, 60, 0, 11, known_tails=plane_tails)


@pytest.mark.parametrize("bad", [0, -3])
def test_a_scale_below_1_is_refused(
    tmp_path: Path, source_flights: pd.DataFrame, plane_tails: set[str], bad: int
) -> None:
    with pytest.raises(layout.LandingError, match=f"at least 1, got {bad}"):
        scale.scale_month(_days(source_flights, 1, range(1, 2)), bad, 0, 1, known_tails=set())
    with pytest.raises(layout.LandingError, match=f"at least 1, got {bad}"):
        scale.seed_scaled_landing_zone(tmp_path / "landing", bad)
    assert not (tmp_path / "landing").exists()


def test_rows_of_another_month_are_refused(
    source_flights: pd.DataFrame, plane_tails: set[str]
) -> None:
    with pytest.raises(layout.LandingError, match=r"scale_month\(month=2\).*months \[1\]"):
        scale.scale_month(_days(source_flights, 1, range(1, 2)), 2, 0, 2, known_tails=plane_tails)


@pytest.mark.parametrize(
    ("column", "bounds"),
    [("dep_delay", scale.DEP_DELAY_BOUNDS), ("arr_delay", scale.ARR_DELAY_BOUNDS)],
)
def test_the_delay_bounds_are_the_schemas(column: str, bounds: tuple[int, int]) -> None:
    statistics = schemas.RAW_FLIGHTS.columns[column].checks[0].statistics
    assert (statistics["min_value"], statistics["max_value"]) == bounds


def test_cli_parses_scale_and_seed() -> None:
    parser = commands.build_parser()
    args = parser.parse_args(["seed", "--scale", "10", "--seed", "3", "--through", "2013-02"])
    assert (args.scale, args.seed, args.through) == (10, 3, "2013-02")
    defaults = parser.parse_args(["seed"])
    assert (defaults.scale, defaults.seed) == (1, 0)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--scale", "0"), ("--scale", "-2"), ("--scale", "1.5"), ("--scale", "ten"), ("--seed", "-1")],
)
def test_cli_rejects_a_bad_scale_or_seed(
    tmp_path: Path, option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        commands.main(["seed", option, value, "--landing", str(tmp_path / "landing")])
    assert exit_info.value.code == 2
    assert f"argument {option}: {value!r} is not a whole number" in capsys.readouterr().err
    assert not (tmp_path / "landing").exists()


def test_cli_seeds_a_scaled_landing_zone(
    tmp_path: Path,
    source_flights: pd.DataFrame,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "landing"

    def seed(*options: str) -> int:
        return commands.main(["seed", "--through", "2013-01", "--landing", str(root), *options])

    assert seed("--scale", "2", "--seed", "5") == 0
    assert "3 written (flights x2, seed 5)" in capsys.readouterr().out
    landed = gzip.decompress(layout.monthly_file(root, "flights", "2013-01").read_bytes())
    assert len(landed.splitlines()) == 1 + 2 * int((source_flights["month"] == 1).sum())
    assert seed("--scale", "2", "--seed", "6", "--if-empty") == 0
    assert "already holds data" in capsys.readouterr().out
    assert seed("--scale", "2", "--seed", "6", "--force") == 0
    assert "1 overwritten, 2 unchanged (flights x2, seed 6)" in capsys.readouterr().out
