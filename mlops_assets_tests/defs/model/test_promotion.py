"""Champion against challenger on real MLflow: who gets @champion, and what is recorded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver
from dagster._core.loader import LoadingContextForTest
from mlflow import MlflowClient

from mlops_assets import definitions
from mlops_assets.defs.model.registry import champion_passed_the_gate
from mlops_assets.resources import MlflowTracking
from mlops_assets.tracking import registry
from mlops_assets_tests.contract import step_failure as _refusal

pytestmark = pytest.mark.e2e

MODEL = "flight_delay_classifier"
QUICK_EVALUATION = {"model_evaluation": {"config": {"importance_rows": 500}}}
WEAK = {
    "ops": {
        "trained_model": {"config": {"max_iter": 2, "trials": 1, "include_baseline": False}},
        "registered_model": {"config": {"min_roc_auc": 0.5}},
        **QUICK_EVALUATION,
    }
}
STRONG = {"ops": {"trained_model": {"config": {"max_iter": 60, "trials": 1}}, **QUICK_EVALUATION}}
PREDICTIONS = dg.AssetKey("flight_delay_predictions")


def _retrain(instance: dg.DagsterInstance, run_config: dict[str, Any]) -> dict[str, Any]:
    result = definitions.defs.resolve_job_def("retrain_job").execute_in_process(
        instance=instance, run_config=run_config
    )
    assert result.success
    record = instance.fetch_materializations(dg.AssetKey("registered_model"), limit=1).records[0]
    assert record.asset_materialization is not None
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_the_champion_changes_only_for_a_better_and_no_worse_calibrated_challenger(
    project_env: Path, first_quarter_instance: dg.DagsterInstance
) -> None:
    instance = first_quarter_instance
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])

    def champion() -> str:
        return str(client.get_model_version_by_alias(MODEL, "champion").version)

    first = _retrain(instance, WEAK)
    assert (first["version"], first["promoted"], champion()) == ("1", True, "1")
    assert str(first["gate_reason"]).startswith("no champion yet")

    better = _retrain(instance, STRONG)
    assert (better["version"], better["promoted"], champion()) == ("2", True, "2")
    assert better["champion_version"] == "1"
    assert float(str(better["auc_delta"])) > 0.002
    tags = client.get_model_version(MODEL, "2").tags
    assert tags["gate"] == "passed" and tags["champion_version"] == "1"
    assert tags["auc_delta_interval"].startswith("[+")
    assert client.get_model_version(MODEL, "1").tags["retired_by_version"] == "2"

    assert _data_version(instance) == "champion-2"
    worse = _retrain(instance, WEAK)
    assert (worse["version"], worse["promoted"], champion()) == ("3", False, "2")
    # A losing challenger leaves the data version alone: nothing downstream goes stale.
    assert _data_version(instance) == "champion-2"
    assert str(worse["gate_reason"]).startswith("kept the champion:")
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == "3"
    assert client.get_model_version(MODEL, "3").tags["gate"] == "failed"

    # Same data, same seeded configuration: the same model, statistically indistinguishable.
    same = _retrain(instance, STRONG)
    assert (same["version"], same["promoted"], champion()) == ("4", False, "2")
    assert float(str(same["auc_delta"])) == 0.0
    assert "not measurably better" in str(same["gate_reason"])
    assert same["auc_delta_days"] == "31"  # March's days were resampled


def test_a_champion_that_moved_after_the_evaluation_stops_the_registration(
    project_env: Path, first_quarter_instance: dg.DagsterInstance
) -> None:
    instance = first_quarter_instance
    _retrain(instance, WEAK)
    job = definitions.defs.resolve_job_def("retrain_job")
    evaluated = job.execute_in_process(
        instance=instance,
        run_config={"ops": {k: v for k, v in STRONG["ops"].items() if k != "registered_model"}},
        asset_selection=[dg.AssetKey("trained_model"), dg.AssetKey("model_evaluation")],
    )
    assert evaluated.success
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    client.delete_registered_model_alias(MODEL, "champion")  # someone moved it meanwhile
    registering = job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("registered_model")], raise_on_error=False
    )
    assert not registering.success
    failure = registering.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure is not None
    assert "@champion is version None but model_evaluation compared against 1" in str(
        failure.description
    )
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 1  # nothing registered


def _data_version(instance: dg.DagsterInstance) -> str | None:
    """registered_model's current data version, as Dagster's staleness reads it."""
    record = instance.get_latest_data_version_record(dg.AssetKey("registered_model"))
    event = record.asset_materialization or record.asset_observation if record else None
    return event.tags.get("dagster/data_version") if event and event.tags else None


def _stale(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None) -> str:
    """The staleness the UI shows (the resolver behind its GraphQL ``staleStatus``)."""
    resolver = CachingStaleStatusResolver(
        instance, definitions.defs.resolve_asset_graph(), LoadingContextForTest(instance)
    )
    return resolver.get_status(key, partition).value


def _scoring(instance: dg.DagsterInstance, month: str) -> dg.ExecuteInProcessResult:
    return definitions.defs.resolve_job_def("scoring_job").execute_in_process(
        instance=instance, partition_key=month, raise_on_error=False
    )


def _score(instance: dg.DagsterInstance, month: str) -> pd.DataFrame:
    """Score ``month`` with @champion; return the stored predictions."""
    result = _scoring(instance, month)
    assert result.success
    record = instance.fetch_materializations(PREDICTIONS, limit=1).records[0]
    assert record.asset_materialization is not None
    version = record.asset_materialization.metadata["model_version"].value
    frame = result.output_for_node("flight_delay_predictions")[month]
    assert {"delay_probability", "model_version", "carrier_flight"} <= set(frame.columns)
    assert frame["delay_probability"].between(0, 1).all()
    assert frame["model_version"].unique().tolist() == [version]
    return frame


def _champion_check() -> dg.AssetCheckResult:
    result = champion_passed_the_gate(mlflow_tracking=MlflowTracking())
    assert isinstance(result, dg.AssetCheckResult)
    return result


def _rollback(instance: dg.DagsterInstance, **config: str) -> dg.ExecuteInProcessResult:
    return definitions.defs.resolve_job_def("rollback_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"roll_back_champion": {"config": config}}},
        raise_on_error=False,
    )


def test_every_alias_move_is_recorded_and_rollback_restores_the_previous_champion(
    project_env: Path, first_quarter_instance: dg.DagsterInstance
) -> None:
    instance = first_quarter_instance
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    assert "no @champion" in _refusal(_rollback(instance, reason="nothing to roll back"))
    no_champion = _champion_check()
    assert not no_champion.passed and no_champion.severity == dg.AssetCheckSeverity.WARN
    _retrain(instance, WEAK)
    assert "no earlier champion is recorded" in _refusal(_rollback(instance, reason="too early"))
    promoted = _retrain(instance, STRONG)
    assert promoted["promoted"] is True
    assert _score(instance, "2013-03")["model_version"].unique().tolist() == ["2"]
    assert _stale(instance, PREDICTIONS, "2013-03") == "FRESH"

    moves = registry.alias_history(client, MODEL)
    assert [(m.alias, m.from_version, m.to_version) for m in moves] == [
        ("challenger", None, "1"),
        ("champion", None, "1"),
        ("challenger", "1", "2"),
        ("champion", "1", "2"),
    ]
    assert moves[-1].reason.startswith("promoted") and moves[-1].dagster_run_id

    rolled = _rollback(instance, reason="v2 misbehaves on weekend flights")
    assert rolled.success
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    last = registry.alias_history(client, MODEL, "champion")[-1]
    assert (last.from_version, last.to_version) == ("2", "1")
    assert last.reason == "rollback: v2 misbehaves on weekend flights"
    assert last.dagster_run_id == rolled.run_id
    assert client.get_model_version(MODEL, "2").tags["rolled_back_by_run"] == rolled.run_id
    reported = instance.fetch_materializations(dg.AssetKey("registered_model"), limit=1)
    assert reported.records[0].run_id == rolled.run_id
    assert _data_version(instance) == "champion-1"
    # The month scored by version 2 is now stale in the UI; the model assets are not.
    assert _stale(instance, PREDICTIONS, "2013-03") == "STALE"
    assert _stale(instance, dg.AssetKey("registered_model")) == "FRESH"
    assert _score(instance, "2013-03")["model_version"].unique().tolist() == ["1"]
    assert _stale(instance, PREDICTIONS, "2013-03") == "FRESH"

    # The blocking check: the rolled-back champion passed the gate and its move is recorded.
    assert _champion_check().passed
    client.set_model_version_tag(MODEL, "1", "gate", "failed")  # as if it had never passed
    ungated = _champion_check()
    assert not ungated.passed and ungated.severity == dg.AssetCheckSeverity.ERROR
    assert "gate failed" in str(ungated.description)
    refused = _scoring(instance, "2013-02")
    assert "cannot score 2013-02: @champion is version 1: gate failed" in _refusal(refused)
    assert instance.fetch_materializations(PREDICTIONS, limit=5).records[0].run_id != (
        refused.run_id
    )
    client.set_model_version_tag(MODEL, "1", "gate", "passed")
    client.set_registered_model_alias(MODEL, "champion", "2")  # by hand: no audit record
    unaudited = _champion_check()
    assert not unaudited.passed and "no audit record" in str(unaudited.description)
    client.set_registered_model_alias(MODEL, "champion", "1")

    assert "has no version '7'" in _refusal(_rollback(instance, reason="typo", target_version="7"))
    assert "already @champion" in _refusal(_rollback(instance, reason="same", target_version="1"))
    client.set_model_version_tag(MODEL, "2", "gate", "failed")
    ungated_target = _rollback(instance, reason="to a refused one", target_version="2")
    assert "version 2 did not pass the gate (gate: failed)" in _refusal(ungated_target)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    client.set_model_version_tag(MODEL, "2", "gate", "passed")
    named = _rollback(instance, reason="back to the better one", target_version="2")
    assert named.success
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
