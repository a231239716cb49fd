"""Bad landing files: each class is refused with a message naming the file, column and values,
and what was stored before (the month's partitions, @champion) stays exactly as it was.

One real pipeline is built once for the module (January to March 2013 landed, a champion
registered); each test re-lands a damaged February file, runs ``month_job`` on it the way
the landing sensor would, checks the refusal, then puts the good file back.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlops_assets import definitions
from mlops_assets.defs.ingestion.landing_sensor import landing_zone_sensor
from mlops_assets.defs.shared.partitions import range_tags
from mlops_assets.landing import layout
from mlops_assets.resources import LandingZone
from mlops_assets_tests.conftest import copy_ingested_first_quarter
from mlops_assets_tests.contract import FAST_RUN_CONFIG, step_failure

pytestmark = pytest.mark.e2e

MONTH = "2013-02"
MODEL = "flight_delay_classifier"
STORED = ("raw_flights", "raw_weather", "flight_features")


@dataclass
class Pipeline:
    """The module's pipeline: its data dir, instance and MLflow client."""

    data: Path
    instance: dg.DagsterInstance
    client: MlflowClient

    @property
    def landing(self) -> Path:
        return self.data / "landing"

    def stored(self) -> dict[str, str]:
        """A digest of every stored partition of the monthly assets."""
        lake = self.data / "lake"
        return {
            str(path.relative_to(lake)): hashlib.sha256(path.read_bytes()).hexdigest()
            for asset in STORED
            for path in sorted((lake / asset).glob("*"))
        }

    def champion(self) -> str:
        return str(self.client.get_model_version_by_alias(MODEL, "champion").version)

    def run_batch(self, batch: tuple[str, str]) -> dg.ExecuteInProcessResult:
        """``month_job`` on a range of months, as a backfill's batched run."""
        return definitions.defs.resolve_job_def("month_job").execute_in_process(
            instance=self.instance, tags=range_tags(batch), raise_on_error=False
        )

    def run_month(self) -> dg.ExecuteInProcessResult:
        return definitions.defs.resolve_job_def("month_job").execute_in_process(
            instance=self.instance, partition_key=MONTH, raise_on_error=False
        )


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, ingested_first_quarter: Path
) -> Iterator[Pipeline]:
    root = tmp_path_factory.mktemp("bad_input")
    data = root / "data"
    env = copy_ingested_first_quarter(ingested_first_quarter, data, root / "home")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
            trained = definitions.defs.resolve_job_def("retrain_job").execute_in_process(
                instance=instance, run_config=FAST_RUN_CONFIG
            )
            assert trained.success
            yield Pipeline(data, instance, MlflowClient(os.environ["MLFLOW_TRACKING_URI"]))


def _frame(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _gzip(text: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(text)
    return buffer.getvalue()


def _csv(frame: pd.DataFrame) -> bytes:
    return _gzip(frame.to_csv(index=False).encode("utf-8"))


def _renamed(good: bytes, frame: pd.DataFrame) -> bytes:
    return _csv(frame.rename(columns={"dep_delay": "departure_delay"}))


def _dropped(good: bytes, frame: pd.DataFrame) -> bytes:
    return _csv(frame.drop(columns=["carrier"]))


def _wrong_type(good: bytes, frame: pd.DataFrame) -> bytes:
    frame.loc[[10, 11], "distance"] = "far"
    return _csv(frame)


def _empty(good: bytes, frame: pd.DataFrame) -> bytes:
    return b""


def _header_only(good: bytes, frame: pd.DataFrame) -> bytes:
    return _csv(frame.head(0))


def _truncated(good: bytes, frame: pd.DataFrame) -> bytes:
    return good[: len(good) // 2]


def _other_month(good: bytes, frame: pd.DataFrame) -> bytes:
    march = frame.head(40).copy()
    march["month"] = "3"
    return _csv(pd.concat([frame, march], ignore_index=True))


def _not_utf8(good: bytes, frame: pd.DataFrame) -> bytes:
    text = frame.to_csv(index=False).encode("utf-8")
    return _gzip(text.replace(b",EWR,", b",EW\xe9,", 1))


def _duplicated(good: bytes, frame: pd.DataFrame) -> bytes:
    return _csv(pd.concat([frame, frame.iloc[[5, 6, 7]]], ignore_index=True))


def _absurd(good: bytes, frame: pd.DataFrame) -> bytes:
    frame.loc[3, "distance"] = "-50"
    frame.loc[4, "dep_delay"] = "99999"
    return _csv(frame)


BAD_FLIGHT_FILES: dict[str, tuple[Callable[[bytes, pd.DataFrame], bytes], tuple[str, ...]]] = {
    "renamed column": (_renamed, ("missing column(s) ['dep_delay']", "'departure_delay'")),
    "missing column": (_dropped, ("missing column(s) ['carrier']",)),
    "wrong type": (_wrong_type, ("column 'distance' expects int16", "'far'", "2 bad rows")),
    "empty file": (_empty, ("the file is empty",)),
    "header only": (_header_only, ("header but no rows",)),
    "truncated gzip": (_truncated, ("not a complete gzip file", "truncated")),
    "rows of another month": (_other_month, ("40 of", "not in 2013-02", "40 in 2013-03")),
    "not UTF-8": (_not_utf8, ("not UTF-8 text: byte 0xe9 on line",)),
    "duplicated rows": (_duplicated, ("3 duplicated rows on (year, month, day, carrier",)),
    "absurd values": (
        _absurd,
        ("column 'distance' fails in_range(1, 6000): -50", "column 'dep_delay'", "99999"),
    ),
}


@pytest.mark.parametrize("case", list(BAD_FLIGHT_FILES))
def test_a_bad_flights_file_is_refused_and_nothing_stored_changes(
    pipeline: Pipeline, case: str
) -> None:
    damage, expected = BAD_FLIGHT_FILES[case]
    path = layout.monthly_file(pipeline.landing, "flights", MONTH)
    good = path.read_bytes()
    before, champion = pipeline.stored(), pipeline.champion()
    layout.land_bytes(path, damage(good, _frame(path)), force=True)
    try:
        result = pipeline.run_month()
    finally:
        layout.land_bytes(path, good, force=True)

    message = step_failure(result)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, message
    failed = {event.step_key for event in result.get_step_failure_events()}
    assert failed == {"raw_flights"}
    assert not result.asset_materializations_for_node("raw_flights")
    # flight_features did not run on the refused month; every stored partition is intact.
    assert not result.asset_materializations_for_node("flight_features")
    after = pipeline.stored()
    assert {k: v for k, v in after.items() if k.startswith("raw_flights")} == {
        k: v for k, v in before.items() if k.startswith("raw_flights")
    }
    assert {k: v for k, v in after.items() if k.startswith("flight_features")} == {
        k: v for k, v in before.items() if k.startswith("flight_features")
    }
    assert pipeline.champion() == champion


def test_a_bad_month_fails_its_batch_alone_and_reruns_alone_once_fixed(
    pipeline: Pipeline,
) -> None:
    """A backfill in batches: January and February in one run, March in another.

    February's bad file fails its batch's run, naming the file, column and values, and
    nothing of that batch is stored (January's and February's partitions keep their bytes);
    March's run succeeds; @champion stays; February alone reruns once the file is fixed (and
    March, whose context rows were the bad file's).
    """
    path = layout.monthly_file(pipeline.landing, "flights", MONTH)
    good = path.read_bytes()
    before, champion = pipeline.stored(), pipeline.champion()
    layout.land_bytes(path, _duplicated(good, _frame(path)), force=True)
    try:
        bad_batch = pipeline.run_batch(("2013-01", MONTH))
        other_batch = pipeline.run_batch(("2013-03", "2013-03"))
    finally:
        layout.land_bytes(path, good, force=True)

    assert not bad_batch.success
    message = step_failure(bad_batch)
    for fragment in (str(path), "3 duplicated rows on (year, month, day", "refused: 2013-02"):
        assert fragment in message, message
    assert not bad_batch.asset_materializations_for_node("raw_flights")
    assert not bad_batch.asset_materializations_for_node("flight_features")
    # Each month's checks are on its own partition: January passed, February was refused.
    duplicates = {
        e.partition: e.passed
        for e in bad_batch.get_asset_check_evaluations()
        if e.asset_key == dg.AssetKey("raw_flights") and e.check_name == "duplicates"
    }
    assert duplicates == {"2013-01": True, MONTH: False}
    assert other_batch.success
    assert len(other_batch.asset_materializations_for_node("flight_features")) == 1
    after = pipeline.stored()
    for month in ("2013-01", MONTH):
        for asset in STORED:
            key = f"{asset}/{month}.parquet"
            assert after[key] == before[key], key
    assert pipeline.champion() == champion
    # March's run read the bad February as its context rows (29 days: all of February, the
    # duplicated rows included), so its partitions changed: the sensor reruns the month after
    # a changed file for that reason (landing_scan.consumed_months).
    assert after["raw_flights/2013-03.parquet"] != before["raw_flights/2013-03.parquet"]
    # Fixed: February alone goes through, then March with its context, and every partition
    # stores the same bytes as before.
    assert pipeline.run_month().success
    assert pipeline.run_batch(("2013-03", "2013-03")).success
    assert pipeline.stored() == before


def test_a_refused_file_shows_its_failed_checks_on_the_partition(pipeline: Pipeline) -> None:
    path = layout.monthly_file(pipeline.landing, "flights", MONTH)
    good = path.read_bytes()
    layout.land_bytes(path, _duplicated(good, _frame(path)), force=True)
    try:
        result = pipeline.run_month()
    finally:
        layout.land_bytes(path, good, force=True)
    evaluations = {
        evaluation.check_name: evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key == dg.AssetKey("raw_flights")
    }
    assert set(evaluations) == {"schema", "rows_in_month", "duplicates", "null_rates", "row_count"}
    duplicates = evaluations["duplicates"]
    assert not duplicates.passed and duplicates.partition == MONTH
    assert duplicates.metadata["duplicated_rows"].value == 3.0
    assert evaluations["schema"].passed and evaluations["rows_in_month"].passed


def test_the_good_file_landed_again_goes_through(pipeline: Pipeline) -> None:
    before = pipeline.stored()
    result = pipeline.run_month()
    assert result.success
    # The same data: the same stored bytes. Every check passed but one warning, on a real
    # sensor glitch of February 2013: a 1,048 mph wind at EWR, blanked and named.
    assert pipeline.stored() == before
    failed = [
        e
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.asset_key.to_user_string() in STORED
    ]
    assert [(e.asset_key.to_user_string(), e.check_name) for e in failed] == [
        ("raw_weather", "impossible_readings")
    ]
    assert failed[0].severity == dg.AssetCheckSeverity.WARN
    assert "wind_speed: 1048.36" in str(failed[0].description)


def test_an_impossible_weather_reading_is_blanked_and_reported(pipeline: Pipeline) -> None:
    path = layout.monthly_file(pipeline.landing, "weather", MONTH)
    good = path.read_bytes()
    frame = _frame(path)
    frame.loc[100, "temp"] = "999"
    layout.land_bytes(path, _csv(frame), force=True)
    try:
        result = pipeline.run_month()
    finally:
        layout.land_bytes(path, good, force=True)
    assert result.success
    (masked,) = [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "impossible_readings"
    ]
    assert not masked.passed and masked.severity == dg.AssetCheckSeverity.WARN
    assert "temp: 999.0" in str(masked.description)
    stored = result.output_for_node("raw_weather", "raw_weather")[MONTH]
    hour = pd.Timestamp(frame.loc[100, "time_hour"])
    row = stored[(stored["origin"] == frame.loc[100, "origin"]) & (stored["time_hour"] == hour)]
    assert row["temp"].isna().all() and len(row) == 1
    # Put February's real features back for the other tests.
    assert pipeline.run_month().success


def test_the_operator_fixes_the_file_and_the_sensor_runs_the_month_again(
    pipeline: Pipeline,
) -> None:
    """docs/operations.md tells an operator: fix the file, land it again, the sensor takes over."""
    zone = LandingZone(path=str(pipeline.landing))

    def tick(cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
        context = dg.build_sensor_context(
            instance=pipeline.instance, cursor=cursor, resources={"landing_zone": zone}
        )
        result = landing_zone_sensor(context)
        assert isinstance(result, dg.SensorResult)
        # February's run (with March, whose context rows it holds: one batch).
        february = [
            r
            for r in result.run_requests or []
            if MONTH in (r.partition_key, r.tags.get("dagster/asset_partition_range_start"))
        ]
        return february, result.cursor

    def run(request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        assert request.job_name == "month_job"
        return definitions.defs.resolve_job_def("month_job").execute_in_process(
            instance=pipeline.instance,
            partition_key=request.partition_key,
            tags=request.tags,
            raise_on_error=False,
        )

    _, cursor = tick(None)  # the files as they are: the baseline
    path = layout.monthly_file(pipeline.landing, "flights", MONTH)
    good, before = path.read_bytes(), pipeline.stored()
    layout.land_bytes(path, _duplicated(good, _frame(path)), force=True)
    (refused,), cursor = tick(cursor)
    assert "duplicated rows" in step_failure(run(refused))
    assert tick(cursor)[0] == []  # nothing new landed: no retry loop on a bad file

    layout.land_bytes(path, good, force=True)  # the fix
    (fixed,), cursor = tick(cursor)
    assert fixed.run_key != refused.run_key
    assert run(fixed).success
    assert pipeline.stored() == before
