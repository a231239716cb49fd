"""Reproducible model versions on real MLflow: recorded inputs, same metrics, no alias moved."""

from __future__ import annotations

import copy
import gzip
import json
import os
from pathlib import Path
from typing import Any, cast

import dagster as dg
import pytest
from mlflow import MlflowClient

from mlops_assets import definitions
from mlops_assets.defs.shared.lineage import model_code_versions
from mlops_assets.landing import layout
from mlops_assets.tracking import provenance, registry
from mlops_assets_tests.contract import FAST_RUN_CONFIG, step_failure

pytestmark = pytest.mark.e2e

MODEL = "flight_delay_classifier"
ROW_BUDGET = 20_000


def _reproduce(instance: dg.DagsterInstance, version: str) -> dg.ExecuteInProcessResult:
    return definitions.defs.resolve_job_def("reproduce_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"reproduce_model_version": {"config": {"version": version}}}},
        raise_on_error=False,
    )


def test_a_version_records_its_inputs_and_reproduces_to_the_same_metrics_and_sample(
    project_env: Path, first_quarter_instance: dg.DagsterInstance
) -> None:
    instance = first_quarter_instance
    retrain = definitions.defs.resolve_job_def("retrain_job")
    # A budget below January and February's ~50,000 rows: the sample must reproduce too.
    run_config = copy.deepcopy(FAST_RUN_CONFIG)
    run_config["ops"]["trained_model"]["config"]["row_budget"] = ROW_BUDGET
    trained = retrain.execute_in_process(instance=instance, run_config=run_config)
    assert trained.success
    model_metadata = trained.asset_materializations_for_node("trained_model")[0].metadata
    assert model_metadata["subsampled"].value is True
    assert ROW_BUDGET - 2 <= cast(int, model_metadata["train_rows"].value) <= ROW_BUDGET
    assert cast(int, model_metadata["rows_available"].value) > 2 * ROW_BUDGET
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    tags = client.get_model_version(MODEL, "1").tags
    training_run = client.get_run(cast(str, model_metadata["mlflow_run_id"].value))
    assert training_run.data.tags["subsampled"] == "true"
    assert training_run.data.params["row_budget"] == str(ROW_BUDGET)

    recorded = json.loads(tags[provenance.DATA_VERSIONS_TAG])
    assert sorted(recorded) == ["2013-01", "2013-02", "2013-03"]
    for month, version in recorded.items():
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("flight_features"), asset_partitions=[month]
            ),
            limit=1,
        ).records[0]
        materialization = record.asset_materialization
        assert materialization is not None and materialization.tags is not None
        assert materialization.tags["dagster/data_version"] == version
    code_versions = model_code_versions()
    assert json.loads(tags[provenance.CODE_VERSIONS_TAG]) == code_versions
    assert tags[provenance.LOCK_HASH_TAG] == provenance.lock_file_sha256() != "unknown"
    assert tags[provenance.GIT_COMMIT_TAG] == provenance.git_commit()
    assert json.loads(tags[provenance.TRAINING_CONFIG_TAG])["trials"] == 1
    assert json.loads(tags[provenance.EVALUATION_CONFIG_TAG])["importance_rows"] == 500
    moves = registry.alias_history(client, MODEL)

    result = _reproduce(instance, "1")
    assert result.success
    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = cast(Any, output.event_specific_data).metadata
    assert metadata["max_abs_difference"].value == 0.0
    differences = cast(dict[str, float], metadata["differences"].value)
    assert set(differences) >= {"roc_auc", "log_loss", "brier_score", "rows"}
    assert set(differences.values()) == {0.0}
    after = client.get_model_version(MODEL, "1").tags
    assert after["reproduced_by_run"] == result.run_id
    assert registry.alias_history(client, MODEL) == moves  # no alias moved
    experiment = client.get_experiment_by_name("flight_delay")
    assert experiment is not None
    reproduction = client.search_runs(
        [experiment.experiment_id],
        "tags.reproduces_version = '1'",
    )
    assert [run.data.metrics["max_abs_difference"] for run in reproduction] == [0.0]
    reproduced_auc = reproduction[0].data.metrics["holdout_roc_auc"]
    assert abs(reproduced_auc - float(tags["holdout_roc_auc"])) < 1e-6  # tag has 6 decimals

    # Had the recorded evaluation said otherwise, the reproduction would say so and fail.
    evaluation_run = tags["evaluation_run_id"]
    recorded_auc = client.get_run(evaluation_run).data.metrics["holdout_roc_auc"]
    client.log_metric(evaluation_run, "holdout_roc_auc", recorded_auc + 0.01)
    mismatch = step_failure(_reproduce(instance, "1"))
    assert "above the tolerance 1e-09" in mismatch and "another candidate" not in mismatch
    assert f"| roc_auc | {recorded_auc + 0.01:.10f} | {recorded_auc:.10f} | -1.000e-02 |" in (
        mismatch
    )

    # February lands again with fewer flights: its features, and so the inputs, change.
    february = layout.monthly_file(project_env / "landing", "flights", "2013-02")
    rows = gzip.decompress(february.read_bytes()).decode().splitlines()
    february.write_bytes(gzip.compress(("\n".join(rows[:-25]) + "\n").encode(), mtime=0))
    month_job = definitions.defs.resolve_job_def("month_job")
    assert month_job.execute_in_process(instance=instance, partition_key="2013-02").success
    refusal = step_failure(_reproduce(instance, "1"))
    assert "trained on flight_features partitions that have changed since" in refusal
    assert f"2013-02: {recorded['2013-02']} -> " in refusal
    assert "2013-01" not in refusal.split("since")[1]

    assert "has no version '9'" in step_failure(_reproduce(instance, "9"))
