"""The drift loop on real months: a shifted month lands, its drift fails the check, the sensor
retrains, and the gate decides about the new version; a real month does not fail."""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlops_assets import definitions
from mlops_assets.cli import rebuild
from mlops_assets.defs.ingestion.landing_sensor import landing_zone_sensor
from mlops_assets.defs.monitoring.drift import DriftConfig, feature_drift
from mlops_assets.defs.monitoring.drift_sensor import drift_retrain_sensor
from mlops_assets.defs.shared.keys import DRIFT_CHECK
from mlops_assets.landing import layout
from mlops_assets.ml.columns import FEATURE_COLUMNS
from mlops_assets.resources import LandingZone, MlflowTracking
from mlops_assets.resources.stored_partitions import StoredPartitions
from mlops_assets_tests.contract import FAST_RUN_CONFIG

pytestmark = pytest.mark.e2e

MODEL = "flight_delay_classifier"
DRIFT = dg.AssetKey("feature_drift")
RUN_KEY_TAG = "dagster/run_key"
# Two training months and a quick model (one boosting candidate, no baseline): the floor is
# lowered so that it becomes champion.
MODEL_CONFIG = {
    "ops": {
        **FAST_RUN_CONFIG["ops"],
        "trained_model": {"config": {"max_iter": 30, "trials": 1, "include_baseline": False}},
        "registered_model": {"config": {"min_roc_auc": 0.5}},
    }
}
NIGHT_SHIFT_HOURS = 12


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(gzip.decompress(path.read_bytes())))


def _land(path: Path, frame: pd.DataFrame) -> None:
    layout.land_bytes(path, layout.to_gzip_csv(frame), force=False)


def land_shifted_month(source: Path, root: Path, month: str) -> None:
    """Land ``month`` from the real files, its weather and schedule deliberately shifted.

    Temperatures +15 °F and visibility halved; every scheduled departure moved 12 hours round
    the clock on the same day (the afternoon bank now leaves between midnight and 06:00).
    """
    weather = _csv(layout.monthly_file(source, "weather", month))
    weather["temp"] += 15
    weather["visib"] /= 2
    flights = _csv(layout.monthly_file(source, "flights", month))
    hour = (flights["hour"] + NIGHT_SHIFT_HOURS) % 24
    moved = pd.to_timedelta(hour - flights["hour"], unit="h")
    flights["time_hour"] = (pd.to_datetime(flights["time_hour"]) + moved).dt.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    flights["sched_dep_time"] = hour * 100 + flights["minute"]
    flights["hour"] = hour
    _land(layout.monthly_file(root, "weather", month), weather)
    _land(layout.monthly_file(root, "flights", month), flights)


def _latest_check(instance: dg.DagsterInstance, month: str) -> dg.AssetCheckEvaluation:
    records = instance.event_log_storage.get_asset_check_execution_history(DRIFT_CHECK, limit=20)
    for record in records:
        if record.partition == month and isinstance(record.evaluation, dg.AssetCheckEvaluation):
            return record.evaluation
    raise AssertionError(f"no drift check evaluation for {month}")


def _drift_metadata(instance: dg.DagsterInstance, month: str) -> dict[str, Any]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DRIFT, asset_partitions=[month]), limit=1
    ).records
    assert records and records[0].asset_materialization is not None
    return dict(records[0].asset_materialization.metadata)


def _drift_tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    result = drift_retrain_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, dg.SensorResult)
    return result


def _execute(
    instance: dg.DagsterInstance, request: dg.RunRequest, run_config: dict[str, Any] | None = None
) -> dg.ExecuteInProcessResult:
    """Execute a requested run as the daemon would, with its run key."""
    assert request.job_name is not None
    job = definitions.defs.resolve_job_def(request.job_name)
    result = job.execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        run_config=run_config or {},
        tags={**request.tags, RUN_KEY_TAG: request.run_key or ""},
    )
    assert result.success
    return result


def test_a_shifted_month_fails_the_drift_check_and_the_sensor_retrains_once(
    project_env: Path, instance: dg.DagsterInstance, seeded_landing: Path
) -> None:
    root = project_env / "landing"
    root.mkdir()
    shutil.copyfile(seeded_landing / layout.PLANES_FILE, root / layout.PLANES_FILE)
    for month in ("2013-01", "2013-02", "2013-03"):
        for table in layout.MONTHLY_TABLES:
            target = layout.monthly_file(root, table, month)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(layout.monthly_file(seeded_landing, table, month), target)

    # Before any champion, a month's run measures no drift (nothing to compare against).
    rebuild.ingest(definitions.defs, instance, root)
    assert instance.fetch_materializations(DRIFT, limit=1).records == []
    retrain = definitions.defs.resolve_job_def("retrain_job")
    assert retrain.execute_in_process(instance=instance, run_config=MODEL_CONFIG).success
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert client.get_model_version(MODEL, "1").tags["train_months"] == "2013-01,2013-02"

    # The control: March, a real month the champion did not train on, scored with its drift.
    scoring = definitions.defs.resolve_job_def("scoring_job")
    assert scoring.execute_in_process(instance=instance, partition_key="2013-03").success
    march = _drift_metadata(instance, "2013-03")
    assert march["reference_months"].value == ["2013-01", "2013-02"]
    assert march["model_version"].value == "1"
    rows = {record.data["feature"]: record.data for record in march["drift"].value.records}
    assert len(rows) == len(FEATURE_COLUMNS) + 1  # every feature and the prediction
    assert rows["delay_probability"]["kind"] == "prediction"
    assert rows["temp"]["status"] == "fail" and rows["temp"]["gating"] is False  # the season
    assert march["prediction_psi"].value < 0.25
    control = _latest_check(instance, "2013-03")
    assert control.severity == dg.AssetCheckSeverity.WARN  # seasonal weather only warns
    assert control.metadata["failing_features"].value == []
    drift_run = client.get_run(str(march["mlflow_run_id"].value))
    assert drift_run.data.metrics["psi/temp"] == pytest.approx(rows["temp"]["psi"], abs=1e-4)
    assert drift_run.data.tags["drift_outcome/2013-03"] == "warn"

    # The shifted month lands; the landing-zone sensor runs its month (raw data, features,
    # drift against @champion), as the daemon would.
    land_shifted_month(seeded_landing, root, "2013-04")
    landed = landing_zone_sensor(
        dg.build_sensor_context(
            instance=instance, resources={"landing_zone": LandingZone(path=str(root))}
        )
    )
    assert isinstance(landed, dg.SensorResult)
    assert [(r.job_name, r.partition_key) for r in landed.run_requests or []] == [
        ("month_job", "2013-04")
    ]
    instance.add_dynamic_partitions("month", ["2013-04"])
    _execute(instance, (landed.run_requests or [])[0])

    shifted = _latest_check(instance, "2013-04")
    assert not shifted.passed and shifted.severity == dg.AssetCheckSeverity.ERROR
    failing = shifted.metadata["failing_features"].value
    assert isinstance(failing, list) and "sched_hour" in failing
    for feature in ("sched_hour", "temp", "visib"):
        assert feature in str(shifted.description), shifted.description
    april = _drift_metadata(instance, "2013-04")
    april_rows = {r.data["feature"]: r.data for r in april["drift"].value.records}
    assert {april_rows[f]["status"] for f in ("sched_hour", "temp", "visib")} == {"fail"}
    assert april["outcome"].value == "fail"

    # The sensor asks for one retraining, and nothing more until the check fails again.
    first = _drift_tick(instance, None)
    assert [(r.job_name, r.tags["mlops/drifted_months"]) for r in first.run_requests or []] == [
        ("retrain_job", "2013-04")
    ]
    second = _drift_tick(instance, first.cursor)
    assert second.run_requests == [] and "no new failed drift check" in str(second.skip_reason)

    versions_before = len(client.search_model_versions(f"name = '{MODEL}'"))
    _execute(instance, (first.run_requests or [])[0], MODEL_CONFIG)
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert len(versions) == versions_before + 1
    newest = max(versions, key=lambda v: int(v.version))
    tags = newest.tags
    assert tags["train_months"] == "2013-01,2013-02,2013-03"
    assert tags["holdout_month"] == "2013-04"
    assert tags["search"] == "full"  # drift asks for a search, not a refit of the old choice
    assert tags["gate"] in ("passed", "failed") and tags["gate_reason"]
    assert tags["champion_version"] == "1"  # compared with the champion on the shifted month
    registered = instance.fetch_materializations(dg.AssetKey("registered_model"), limit=1)
    materialization = registered.records[0].asset_materialization
    assert materialization is not None
    assert materialization.metadata["promoted"].value == (tags["gate"] == "passed")
    champion = str(client.get_model_version_by_alias(MODEL, "champion").version)
    assert champion == (str(newest.version) if tags["gate"] == "passed" else "1")

    assert _drift_tick(instance, second.cursor).run_requests == []
    # A sensor started afresh sees the old failure but also the retraining that followed it.
    restarted = _drift_tick(instance, None)
    assert restarted.run_requests == []
    assert "retrains the model since" in str(restarted.skip_reason)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (DriftConfig(warn_psi=0.3, fail_psi=0.2), "need 0 <= warn <= fail"),
        (
            DriftConfig(seasonal_features=["temp", "tmp"]),
            "seasonal_features names no feature: ['tmp']",
        ),
    ],
)
def test_bad_drift_settings_fail_before_anything_is_measured(
    config: DriftConfig, message: str
) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("month", ["2013-01"])
        context = dg.build_asset_context(partition_key="2013-01", instance=instance)
        outputs = feature_drift(
            context=context,
            config=config,
            flight_features=StoredPartitions("flight_features", {}),
            mlflow_tracking=MlflowTracking(tracking_uri="sqlite:///unused.db"),
        )
        assert isinstance(outputs, Iterator)
        with pytest.raises(dg.Failure, match=re.escape(message)):
            next(outputs)
