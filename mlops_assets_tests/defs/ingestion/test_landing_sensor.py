"""The landing-zone sensor against a real Dagster instance, and the month-to-model scenario."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from mlops_assets import definitions
from mlops_assets.cli import rebuild
from mlops_assets.defs.ingestion.landing_sensor import landing_zone_sensor
from mlops_assets.defs.shared.lineage import latest_materialization
from mlops_assets.landing import layout, scan
from mlops_assets.resources import LandingZone
from mlops_assets_tests.contract import FAST_RUN_CONFIG, run_materializations

RUN_KEY_TAG = "dagster/run_key"  # what the sensor daemon tags a requested run with

pytestmark = pytest.mark.e2e


@dataclass
class Zone:
    """A writable landing zone fed from the real data, and the sensor's cursor over it."""

    root: Path
    source: Path
    instance: dg.DagsterInstance
    cursor: str | None = None

    def land(self, table: str, month: str) -> Path:
        """Land one real month's file by the protocol: temporary name, then rename."""
        target = layout.monthly_file(self.root, table, month)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.part")
        shutil.copyfile(layout.monthly_file(self.source, table, month), temporary)
        temporary.replace(target)
        return target

    def land_month(self, month: str) -> None:
        for table in layout.MONTHLY_TABLES:
            self.land(table, month)

    def tick(self) -> dg.SensorResult:
        """One evaluation of the sensor, as the daemon runs it; the cursor moves on."""
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"landing_zone": LandingZone(path=str(self.root))},
        )
        result = landing_zone_sensor(context)
        assert isinstance(result, dg.SensorResult)
        for request in result.run_requests or []:
            # The daemon drops a request whose run key already ran: none may be reused.
            assert request.run_key, request
            used = self.instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key}))
            assert not used, f"run key {request.run_key} already ran"
        self.cursor = result.cursor
        return result

    def launch(self, result: dg.SensorResult) -> list[str]:
        """Register the requested partitions and execute the requested runs, as the daemon."""
        for added in result.dynamic_partitions_requests or []:
            assert isinstance(added, dg.AddDynamicPartitionsRequest)
            self.instance.add_dynamic_partitions(
                added.partitions_def_name, list(added.partition_keys)
            )
        run_ids = []
        for request in result.run_requests or []:
            assert request.job_name is not None
            job = definitions.defs.resolve_job_def(request.job_name)
            tags = {**request.tags, RUN_KEY_TAG: request.run_key or ""}
            run = job.execute_in_process(
                instance=self.instance, partition_key=request.partition_key, tags=tags
            )
            assert run.success
            run_ids.append(run.run_id)
        return run_ids


def _requested(result: dg.SensorResult) -> list[tuple[str | None, str | None]]:
    """Each requested run's job and months: its partition, or its range ``first...last``."""

    def months(request: dg.RunRequest) -> str | None:
        first = request.tags.get("dagster/asset_partition_range_start")
        last = request.tags.get("dagster/asset_partition_range_end")
        return request.partition_key or (f"{first}...{last}" if first else None)

    return sorted(((r.job_name, months(r)) for r in result.run_requests or []), key=str)


def _registered(result: dg.SensorResult) -> list[str]:
    keys: list[str] = []
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        keys += request.partition_keys
    return keys


@pytest.fixture
def zone(project_env: Path, instance: dg.DagsterInstance, seeded_landing: Path) -> Iterator[Zone]:
    root = project_env / "landing"
    root.mkdir()
    shutil.copyfile(seeded_landing / layout.PLANES_FILE, root / layout.PLANES_FILE)
    yield Zone(root, seeded_landing, instance)


def test_each_new_month_once_with_the_planes_and_nothing_for_the_same_files(
    zone: Zone,
) -> None:
    zone.land_month("2013-01")
    zone.land_month("2013-02")
    months = zone.tick()
    # One run reads the months' files and the planes file (raw_planes is partitioned by
    # month like them) and builds the months' features.
    assert _requested(months) == [("month_job", "2013-01...2013-02")]
    assert _registered(months) == ["2013-01", "2013-02"]
    zone.launch(months)
    assert zone.instance.get_dynamic_partitions("month") == ["2013-01", "2013-02"]

    again = zone.tick()
    assert _requested(again) == [] and _registered(again) == []
    assert again.skip_reason is not None
    assert "nothing to run: 0 new or changed file(s)" in str(again.skip_reason)

    # The same files landed again (new modification times, same bytes): nothing to run.
    zone.land_month("2013-02")
    relanded = zone.tick()
    assert _requested(relanded) == []

    # A lost cursor re-reads everything, but what is materialized already matches the files.
    zone.cursor = None
    reset = zone.tick()
    assert _requested(reset) == []

    zone.land_month("2013-03")
    new_month = zone.tick()
    assert _requested(new_month) == [("month_job", "2013-03")]
    assert _registered(new_month) == ["2013-03"]
    zone.launch(new_month)
    assert zone.tick().run_requests == []


def test_a_changed_file_reruns_its_month_and_the_month_whose_context_it_holds(
    zone: Zone,
) -> None:
    zone.launch(zone.tick())
    for month in ("2013-01", "2013-02", "2013-03"):
        zone.land_month(month)
    zone.launch(zone.tick())
    february = layout.monthly_file(zone.root, "flights", "2013-02")
    rows = gzip.decompress(february.read_bytes()).decode().splitlines()
    shorter = gzip.compress(("\n".join(rows[:-50]) + "\n").encode(), mtime=0)
    layout.land_bytes(february, shorter, force=True)
    changed = zone.tick()
    # March's raw partition starts with February's last 48 hours, so it is rebuilt too.
    assert _requested(changed) == [("month_job", "2013-02...2013-03")]
    assert _registered(changed) == []
    (run_id,) = zone.launch(changed)
    both = zone.instance.get_run_by_id(run_id)
    assert both is not None and both.tags["dagster/asset_partition_range_end"] == "2013-03"
    rebuilt = latest_materialization(zone.instance, dg.AssetKey("flight_features"), "2013-03")
    assert rebuilt is not None and rebuilt.run_id == run_id
    # Back to the original bytes: requested again, although that content ran before.
    zone.land("flights", "2013-02")
    assert _requested(zone.tick()) == [("month_job", "2013-02...2013-03")]


def test_partial_copies_and_bad_names_are_reported_and_never_consumed(zone: Zone) -> None:
    zone.launch(zone.tick())
    zone.land("weather", "2013-04")
    flights = layout.monthly_file(zone.root, "flights", "2013-04")
    payload = layout.monthly_file(zone.source, "flights", "2013-04").read_bytes()
    flights.parent.mkdir()
    flights.write_bytes(payload[: len(payload) // 2])  # a copy in progress under its final name
    (flights.parent / ".2013-05.csv.gz.part").write_bytes(payload[:100])  # by the protocol
    (flights.parent / "2013-13.csv.gz").write_bytes(payload)
    (flights.parent / "notes.txt").write_text("not data")
    result = zone.tick()
    assert _requested(result) == [] and _registered(result) == []
    reason = str(result.skip_reason)
    assert f"{flights}: gzip stream is incomplete" in reason
    assert "2013-13.csv.gz: not a monthly file name, ignored" in reason
    assert "notes.txt: not a monthly file name, ignored" in reason
    assert ".2013-05" not in reason  # a temporary name is silently not there yet
    assert _requested(zone.tick()) == []  # reported again, still not consumed
    # The copy completes (renamed into place): the month is consumed on the next tick.
    zone.land("flights", "2013-04")
    completed = zone.tick()
    assert _requested(completed) == [("month_job", "2013-04")]
    assert _registered(completed) == ["2013-04"]


def test_a_new_month_lands_and_the_automation_registers_a_model_trained_on_it(
    zone: Zone, project_env: Path
) -> None:
    """Land month N+1 -> sensor -> its partition run -> automation retrains -> new version."""
    for month in ("2013-01", "2013-02", "2013-03"):
        zone.land_month(month)
    defs = definitions.defs
    rebuild.rebuild(defs, zone.instance, zone.root, FAST_RUN_CONFIG)
    settled = dg.evaluate_automation_conditions(defs=defs, instance=zone.instance)
    assert settled.total_requested == 0
    assert _requested(zone.tick()) == []  # all of it is materialized already

    zone.land_month("2013-04")
    tick = zone.tick()
    assert _requested(tick) == [("month_job", "2013-04")]
    zone.launch(tick)

    automation = dg.evaluate_automation_conditions(
        defs=defs, instance=zone.instance, cursor=settled.cursor
    )
    requested = sorted(
        key.to_user_string()
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if automation.get_num_requested(key)
    )
    assert requested == ["model_evaluation", "registered_model", "trained_model"]
    retrain = defs.resolve_job_def("retrain_job").execute_in_process(
        instance=zone.instance,
        asset_selection=[dg.AssetKey(key) for key in requested],
        tags={"dagster/automation_condition": "true"},
        run_config=FAST_RUN_CONFIG,  # the months and the sensor are under test, not the search
    )
    assert retrain.success
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    versions = client.search_model_versions("name = 'flight_delay_classifier'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    newest = client.get_model_version("flight_delay_classifier", "2")
    assert newest.tags["dagster.run_id"] == retrain.run_id
    trained = client.get_run(newest.tags["training_run_id"])
    assert trained.data.params["holdout_month"] == "2013-04"
    assert trained.data.params["train_months"] == "2013-01,2013-02,2013-03"
    after = dg.evaluate_automation_conditions(
        defs=defs, instance=zone.instance, cursor=automation.cursor
    )
    assert after.total_requested == 0  # one retraining, not one per step or per tick

    # The new month refitted what the rebuild's search chose, without a search; the UI and
    # MLflow say which path ran and why, and the version reproduces through the same refit.
    searched = client.get_run(client.get_model_version(MODEL, "1").tags["training_run_id"])
    assert client.get_model_version(MODEL, "1").tags["search"] == "full"
    assert newest.tags["search"] == "refit"
    assert trained.data.tags["candidate"] == searched.data.tags["candidate"]
    assert not client.search_runs(
        [trained.info.experiment_id], f"tags.mlflow.parentRunId = '{trained.info.run_id}'"
    )  # no candidate runs under the refit
    refit_meta = _trained_model_metadata(zone.instance, retrain.run_id)
    assert refit_meta["search"] == "refit"
    origin = searched.data.tags["dagster.run_id"]
    assert f"chosen by the search of run {origin}" in str(refit_meta["search_reason"])
    assert refit_meta["search_record"]["searched_in"] == origin  # type: ignore[index]
    reproduced = defs.resolve_job_def("reproduce_job").execute_in_process(
        instance=zone.instance,
        run_config={"ops": {"reproduce_model_version": {"config": {"version": "2"}}}},
    )
    assert reproduced.success
    reproduction = client.search_runs([trained.info.experiment_id], "tags.reproduces_version = '2'")
    assert [run.data.tags["selection"] for run in reproduction] == ["reproduced refit"]

    # The weekly schedule's tags ask for a search: the same months, searched again.
    weekly = defs.resolve_schedule_def("weekly_retrain_schedule")
    searched_again = defs.resolve_job_def("retrain_job").execute_in_process(
        instance=zone.instance, tags=dict(weekly.tags), run_config=FAST_RUN_CONFIG
    )
    assert searched_again.success
    weekly_meta = _trained_model_metadata(zone.instance, searched_again.run_id)
    assert weekly_meta["search"] == "full"
    assert weekly_meta["search_reason"] == "full search: requested by weekly_retrain_schedule"


def test_a_model_trained_on_one_month_records_no_search_to_refit(
    zone: Zone, project_env: Path
) -> None:
    """January alone compares nothing: the next retraining searches instead of refitting."""
    for month in ("2013-01", "2013-02"):
        zone.land_month(month)
    defs = definitions.defs
    rebuild.rebuild(defs, zone.instance, zone.root, FAST_RUN_CONFIG)
    retrain = defs.resolve_job_def("retrain_job").execute_in_process(
        instance=zone.instance, run_config=FAST_RUN_CONFIG
    )
    assert retrain.success
    first = _trained_model_metadata(zone.instance, retrain.run_id)
    assert first["search"] == "full"
    assert first["search_reason"] == "full search: no earlier search is recorded"
    assert "search_record" not in first


MODEL = "flight_delay_classifier"


def _trained_model_metadata(instance: dg.DagsterInstance, run_id: str) -> dict[str, object]:
    """The values of the metadata ``trained_model`` recorded in a run."""
    materialization = run_materializations(instance, run_id)["trained_model"]
    return {key: value.value for key, value in materialization.metadata.items()}


def test_a_new_planes_file_rebuilds_every_month_and_a_missing_one_holds_them(
    zone: Zone,
) -> None:
    zone.land_month("2013-01")
    zone.launch(zone.tick())
    planes = zone.root / layout.PLANES_FILE
    original = planes.read_bytes()
    rows = gzip.decompress(original).decode().splitlines()
    fewer = gzip.compress(("\n".join(rows[:-10]) + "\n").encode(), mtime=0)
    # A -> B -> A: every month is rebuilt each time (its features read the planes), the last
    # time although A ran before; February lands with the first change, the same after.
    for payload in (fewer, original):
        layout.land_bytes(planes, payload, force=True)
        zone.land_month("2013-02")
        changed = zone.tick()
        assert _requested(changed) == [("month_job", "2013-01...2013-02")]
        zone.launch(changed)
        for month in ("2013-01", "2013-02"):
            stored = latest_materialization(zone.instance, dg.AssetKey("raw_planes"), month)
            assert stored is not None and stored.asset_materialization is not None
            content = stored.asset_materialization.metadata["content_sha256"].value
            assert content == scan.version_of({layout.PLANES_FILE: scan.file_sha256(planes)})
    assert _requested(zone.tick()) == []

    # No planes file: a new month waits, kept in the cursor, until one lands.
    planes.unlink()
    zone.land_month("2013-03")
    held = zone.tick()
    assert _requested(held) == [] and scan.decode_pending(held.cursor) == ["2013-03"]
    assert f"wait for {layout.PLANES_FILE}: land it" in str(held.skip_reason)
    layout.land_bytes(planes, original, force=True)
    # The same planes as before: the months built with them are not run again.
    assert _requested(zone.tick()) == [("month_job", "2013-03")]


def test_features_older_than_their_raw_data_are_requested_after_a_cursor_reset(
    zone: Zone,
) -> None:
    zone.land_month("2013-01")
    zone.launch(zone.tick())
    zone.launch(zone.tick())
    raw_only = definitions.defs.resolve_job_def("month_job").execute_in_process(
        instance=zone.instance,
        partition_key="2013-01",
        asset_selection=[dg.AssetKey("raw_flights"), dg.AssetKey("raw_weather")],
    )
    assert raw_only.success
    zone.cursor = None
    assert _requested(zone.tick()) == [("month_job", "2013-01")]
