"""The code location: it loads fast, every resource is bound, jobs and assets are as documented."""

from __future__ import annotations

import re
import subprocess
import sys

import dagster as dg
import pytest

from mlops_assets import definitions
from mlops_assets.defs.operations.reproduce import ReproduceConfig
from mlops_assets.defs.operations.rollback import RollbackConfig
from mlops_assets.defs.shared import keys as keys_module
from mlops_assets.defs.shared.lineage import model_code_versions
from mlops_assets.defs.shared.partitions import MONTH_BATCHES, MONTHS, MONTHS_PER_RUN, month_ranges
from mlops_assets.landing import layout
from mlops_assets.runtime import settings

MONTHLY = {
    "raw_flights",
    "raw_weather",
    "raw_planes",
    "flight_features",
    "flight_delay_predictions",
    "feature_drift",
}
# 2: month partitions (the model assets read them as a mapping); 3: model candidates and
# provenance in trained_model; 4: the evaluation config recorded; 3: provenance on the version;
# 4: trained_model records the drift reference of its training rows.
CODE_VERSIONS = {
    "raw_flights": "3",
    "raw_weather": "3",
    "raw_planes": "3",
    "flight_features": "4",
    "trained_model": "6",
    "model_evaluation": "5",
    "registered_model": "4",
    "flight_delay_predictions": "1",
    "feature_drift": "1",
}
ASSETS = {
    "raw_flights": set(),
    "raw_weather": set(),
    "raw_planes": set(),
    "flight_features": {"raw_flights", "raw_weather", "raw_planes"},
    "trained_model": {"flight_features"},
    "model_evaluation": {"flight_features", "trained_model"},
    "registered_model": {"trained_model", "model_evaluation"},
    "flight_delay_predictions": {"flight_features", "registered_model"},
    "feature_drift": {"flight_features", "registered_model"},
}


def test_definitions_validate_and_bind_every_resource() -> None:
    defs = definitions.defs
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == set(ASSETS)
    for key, parents in ASSETS.items():
        node = graph.get(dg.AssetKey(key))
        assert {p.to_user_string() for p in node.parent_keys} == parents
        assert node.code_version == CODE_VERSIONS[key]
        assert node.owners == ["team:mlops"]
        assert node.is_partitioned == (key in MONTHLY)
        assert node.kinds
        assert node.description and "\n" not in node.description.strip()
    month_job = defs.resolve_job_def("month_job")
    assert month_job.partitions_def == MONTHS
    assert {key.to_user_string() for key in month_job.asset_layer.executable_asset_keys} == {
        "raw_flights",
        "raw_weather",
        "raw_planes",
        "flight_features",
        "feature_drift",
    }
    rollback = defs.resolve_job_def("rollback_job")
    assert [node.name for node in rollback.graph.nodes] == ["roll_back_champion"]
    assert set(RollbackConfig.model_fields) == {"reason", "target_version"}
    reproduce = defs.resolve_job_def("reproduce_job")
    assert [node.name for node in reproduce.graph.nodes] == ["reproduce_model_version"]
    assert set(ReproduceConfig.model_fields) == {"version", "tolerance"}
    scoring_job = defs.resolve_job_def("scoring_job")
    assert scoring_job.partitions_def == MONTHS
    assert {key.to_user_string() for key in scoring_job.asset_layer.executable_asset_keys} == {
        "flight_delay_predictions",
        "feature_drift",
    }
    drift_check = dg.AssetCheckKey(dg.AssetKey("feature_drift"), "drift_within_thresholds")
    assert drift_check == keys_module.DRIFT_CHECK
    assert drift_check in graph.asset_check_keys
    for job in (month_job, scoring_job):
        assert drift_check in job.asset_layer.asset_graph.asset_check_keys
    retrain_job = defs.resolve_job_def("retrain_job")
    assert {key.to_user_string() for key in retrain_job.asset_layer.executable_asset_keys} == {
        "trained_model",
        "model_evaluation",
        "registered_model",
    }


def test_every_named_asset_key_is_an_asset_of_the_code_location() -> None:
    """The keys that sensors, jobs and checks import (``defs/shared/keys.py``) name real assets."""
    named = {value for value in vars(keys_module).values() if isinstance(value, dg.AssetKey)}
    assert {key.to_user_string() for key in named} == set(ASSETS)
    assert set(keys_module.MODEL_LINEAGE) <= named


def test_the_code_versions_a_model_records_are_the_repositorys() -> None:
    """What ``trained_model`` records and ``reproduce_job`` compares is what Dagster holds."""
    graph = definitions.defs.get_repository_def().asset_graph
    held = {key: graph.get(key).code_version for key in graph.get_all_asset_keys()}
    assert held == keys_module.CODE_VERSIONS
    assert model_code_versions() == {
        key.to_user_string(): held[key] for key in keys_module.MODEL_LINEAGE
    }


def test_model_assets_refresh_by_automation_and_every_step_retries_transient_faults() -> None:
    defs = definitions.defs
    graph = defs.resolve_asset_graph()
    for key in ASSETS:
        node = graph.get(dg.AssetKey(key))
        automated = key in {
            "flight_features",
            "trained_model",
            "model_evaluation",
            "registered_model",
        }
        assert (node.automation_condition is not None) == automated
        policy = defs.resolve_assets_def(key).op.retry_policy
        assert policy is not None and policy.max_retries >= 3
        assert policy.backoff == dg.Backoff.EXPONENTIAL
        assert policy.jitter == dg.Jitter.PLUS_MINUS


def test_schedules_and_sensors_start_stopped() -> None:
    defs = definitions.defs
    for name, cron, job in (
        ("weekly_retrain_schedule", "0 3 * * 1", "retrain_job"),
        ("nightly_scoring_schedule", "0 2 * * *", "scoring_job"),
    ):
        schedule = defs.resolve_schedule_def(name)
        assert schedule.cron_schedule == cron
        assert schedule.execution_timezone == "UTC"
        assert schedule.job_name == job
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    for name in ("automation_sensor", "landing_zone_sensor", "drift_retrain_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.STOPPED
    # Bookkeeping only, so on by default: it closes MLflow runs that a failed run left open.
    for name in ("mlflow_run_failure_sensor", "notify_run_failure_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING


def test_nothing_is_automated_while_the_features_are_missing(instance: dg.DagsterInstance) -> None:
    result = dg.evaluate_automation_conditions(defs=definitions.defs, instance=instance)
    assert result.total_requested == 0


HEAVY_LIBRARIES = (
    "mlflow",
    "sklearn",
    "matplotlib",
    "scipy",
    "pandas",
    "numpy",
    "pyarrow",
    "pandera",
    "dagster_pandera",
)


def test_loading_the_code_location_imports_no_heavy_library() -> None:
    # As the code server loads it: the module, then every definition resolved.
    script = (
        "import sys, mlops_assets.definitions as d;"
        "d.defs.get_repository_def().load_all_definitions();"
        f"print(','.join(m for m in {HEAVY_LIBRARIES!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_nightly_scoring_schedule_scores_the_newest_built_month(
    instance: dg.DagsterInstance,
) -> None:
    schedule = definitions.defs.resolve_schedule_def("nightly_scoring_schedule")

    def evaluate() -> dg.RunRequest | dg.SkipReason:
        with dg.build_schedule_context(
            instance=instance, repository_def=definitions.defs.get_repository_def()
        ) as context:
            data = schedule.evaluate_tick(context)
        if data.skip_message:
            return dg.SkipReason(data.skip_message)
        assert data.run_requests and len(data.run_requests) == 1
        return data.run_requests[0]

    skipped = evaluate()
    assert isinstance(skipped, dg.SkipReason) and "no month is registered" in str(
        skipped.skip_message
    )
    instance.add_dynamic_partitions("month", ["2013-01", "2013-02"])
    waiting = evaluate()
    assert isinstance(waiting, dg.SkipReason)
    assert "flight_features of 2013-02, the newest month, is not built yet" in str(
        waiting.skip_message
    )
    instance.report_runless_asset_event(
        dg.AssetMaterialization("flight_features", partition="2013-02")
    )
    request = evaluate()
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2013-02"


def test_months_are_cut_into_consecutive_batches_of_at_most_months_per_run() -> None:
    order = [layout.month_key(2013, m) for m in range(1, 13)]
    year = month_ranges(order, order)
    assert year == [
        (order[i], order[min(i + MONTHS_PER_RUN, 12) - 1]) for i in range(0, 12, MONTHS_PER_RUN)
    ]
    # A gap splits a batch: a range spans every key between its ends.
    assert month_ranges(["2013-01", "2013-02", "2013-04"], order) == [
        ("2013-01", "2013-02"),
        ("2013-04", "2013-04"),
    ]
    # Keys follow the order they were registered in, not the calendar.
    late = ["2013-01", "2013-03", "2013-02"]
    assert month_ranges(["2013-03", "2013-02"], late) == [("2013-03", "2013-02")]
    assert month_ranges([], order) == []
    every_month = [
        m for first, last in year for m in order[order.index(first) : order.index(last) + 1]
    ]
    assert every_month == order
    for policy_holder in (
        "raw_flights",
        "raw_weather",
        "raw_planes",
        "flight_features",
        "feature_drift",
        "flight_delay_predictions",
    ):
        assets_def = definitions.defs.resolve_assets_def(policy_holder)
        assert assets_def.backfill_policy == MONTH_BATCHES, policy_holder


@pytest.mark.parametrize("value", ["0", "six", "-1", "2.5"])
def test_a_bad_batch_size_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(settings.MONTHS_PER_RUN_ENV, value)
    with pytest.raises(ValueError, match=f"MLOPS_MONTHS_PER_RUN='{re.escape(value)}'"):
        settings.months_per_run()
    monkeypatch.setenv(settings.MONTHS_PER_RUN_ENV, "3")
    assert settings.months_per_run() == 3
