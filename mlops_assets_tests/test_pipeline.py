"""The asset graph end to end on the real data, against a real MLflow store and Dagster instance.

One rebuild of the first quarter of 2013 serves the module: its months (one batch), the model
(trained on January and February, February its validation month, March held out) and the
scoring. The whole year's rebuild is what ``benchmarks/bench_pipeline.py`` measures.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlops_assets import definitions
from mlops_assets.cli import rebuild
from mlops_assets.defs.ingestion.raw_data import raw_flights
from mlops_assets.defs.shared.lineage import partition_data_versions
from mlops_assets.defs.shared.partitions import MONTHS_PER_RUN
from mlops_assets.landing import layout
from mlops_assets.ml import candidates
from mlops_assets.ml.candidates import SELECTION_MARGIN
from mlops_assets.ml.columns import FEATURE_COLUMNS
from mlops_assets.resources import build_resources
from mlops_assets.resources.mlflow_tracking import DAGSTER_RUN_TAG, PARENT_RUN_TAG
from mlops_assets_tests.contract import (
    FIRST_QUARTER,
    new_mlflow_store,
    run_materializations,
    run_partition_materializations,
)
from mlops_assets_tests.stack import http_ok, model_server

pytestmark = pytest.mark.e2e


@dataclass
class Materialized:
    """One rebuild of every landed month (month batches, the model, the predictions)."""

    data: Path
    instance: dg.DagsterInstance
    run_ids: list[str]
    client: MlflowClient

    @property
    def model_run_id(self) -> str:
        return self.run_ids[len(BATCHES)]

    @property
    def scoring_run_ids(self) -> list[str]:
        return self.run_ids[len(BATCHES) + 1 :]


MONTHS = FIRST_QUARTER
BATCHES = [MONTHS[i : i + MONTHS_PER_RUN] for i in range(0, len(MONTHS), MONTHS_PER_RUN)]
"""The runs a backfill makes of the months: ``MONTHS_PER_RUN`` each."""
HOLDOUT, VALIDATION = MONTHS[-1], MONTHS[-2]


SHORTER_BOOSTING = {"ops": {"trained_model": {"config": {"max_iter": 100}}}}


@pytest.fixture(scope="module")
def materialized(
    tmp_path_factory: pytest.TempPathFactory,
    first_quarter_landing: Path,
    mlflow_store_template: Path,
) -> Iterator[Materialized]:
    data = tmp_path_factory.mktemp("e2e") / "data"
    data.mkdir(parents=True)
    (data / "landing").symlink_to(first_quarter_landing)
    store = new_mlflow_store(mlflow_store_template, data / "mlflow.db")
    (data.parent / "home").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_DATA_DIR", str(data))
        patch.setenv("MLFLOW_TRACKING_URI", store)
        with dg.instance_for_test(temp_dir=str(data.parent / "home")) as instance:
            # The months in batches, each in its own process: the path `make materialize`
            # takes. The default search with 100 boosting iterations instead of 300: the same
            # candidates at half the cost (the benchmark measures the default).
            run_ids = rebuild.rebuild(
                definitions.defs, instance, data / "landing", SHORTER_BOOSTING, workers=2
            )
            client = MlflowClient(tracking_uri=store)
            yield Materialized(data, instance, run_ids, client)


def test_every_month_is_a_partition_and_each_asset_materializes(
    materialized: Materialized,
) -> None:
    months = MONTHS
    assert materialized.instance.get_dynamic_partitions("month") == months
    # A backfill's runs: the months' batches, the model, the scoring's batches.
    assert len(materialized.run_ids) == len(BATCHES) + 1 + len(BATCHES)
    month_runs = materialized.run_ids[: len(BATCHES)]
    model = materialized.model_run_id
    for run_id, batch in zip(month_runs, BATCHES, strict=True):
        run = materialized.instance.get_run_by_id(run_id)
        assert run is not None
        assert run.tags["dagster/asset_partition_range_start"] == batch[0]
        assert run.tags["dagster/asset_partition_range_end"] == batch[-1]
        found = run_partition_materializations(materialized.instance, run_id)
        assert sorted(found) == sorted(
            (asset, month)
            for asset in ("flight_features", "raw_flights", "raw_planes", "raw_weather")
            for month in batch
        )
    found_model = run_materializations(materialized.instance, model)
    assert sorted(found_model) == ["model_evaluation", "registered_model", "trained_model"]
    trained = found_model["trained_model"]
    assert trained.metadata["partitions"].value == months
    assert trained.metadata["train_months"].value == months[:-1]
    assert trained.metadata["holdout_month"].value == HOLDOUT
    assert found_model["registered_model"].metadata["aliases"].value == "@challenger, @champion"
    for run_id, batch in zip(materialized.scoring_run_ids, BATCHES, strict=True):
        scored = run_partition_materializations(materialized.instance, run_id)
        assert sorted(scored) == sorted(
            (asset, month)
            for asset in ("feature_drift", "flight_delay_predictions")
            for month in batch
        )
        assert {m.metadata["model_version"].value for m in scored.values()} == {"1"}
    predictions = pd.read_parquet(
        materialized.data / "lake" / "flight_delay_predictions" / f"{HOLDOUT}.parquet"
    )
    features = pd.read_parquet(
        materialized.data / "lake" / "flight_features" / f"{HOLDOUT}.parquet"
    )
    assert len(predictions) == len(features)
    assert predictions["model_version"].unique().tolist() == ["1"]
    assert predictions["delay_probability"].between(0, 1).all()
    pd.testing.assert_series_equal(predictions["carrier_flight"], features["carrier_flight"])


def test_months_add_up_to_the_whole_quarter_and_link_their_mlflow_runs(
    materialized: Materialized,
) -> None:
    totals = {"flights": 0, "context": 0, "excluded": 0, "features": 0}
    for run_id in materialized.run_ids:
        found = run_partition_materializations(materialized.instance, run_id)
        for (key, _), materialization in found.items():
            run_id_meta = materialization.metadata["mlflow_run_id"].value
            url = materialization.metadata["mlflow_run"].value
            assert isinstance(url, str) and url.endswith(f"/runs/{run_id_meta}"), key
            run = materialized.client.get_run(str(run_id_meta))
            assert run.data.tags["dagster.asset_key"] == key
            assert run.info.status == "FINISHED"
            meta = materialization.metadata
            if key == "raw_flights":
                totals["flights"] += int(meta["month_rows"].value)  # type: ignore[arg-type]
                totals["context"] += int(meta["context_rows"].value)  # type: ignore[arg-type]
            if key == "flight_features":
                totals["excluded"] += int(meta["excluded_cancelled_or_diverted"].value)  # type: ignore[arg-type]
                totals["features"] += int(meta["dagster/row_count"].value)  # type: ignore[arg-type]
    assert totals["flights"] == 80_789  # January to March 2013
    assert totals["context"] > 0  # January has none; every later month starts with context
    assert totals["excluded"] == 2_878  # no arrival: cancelled or diverted
    assert totals["features"] == 80_789 - 2_878


def test_one_parent_run_per_dagster_run_with_a_nested_run_per_asset(
    materialized: Materialized,
) -> None:
    client = materialized.client
    experiment = client.get_experiment_by_name("flight_delay")
    assert experiment is not None
    graph = definitions.defs.resolve_asset_graph()
    for dagster_run_id, job, assets in (
        (
            materialized.run_ids[0],
            "month_job",
            ["flight_features", "raw_flights", "raw_planes", "raw_weather"],
        ),
        (
            materialized.model_run_id,
            "retrain_job",
            ["model_evaluation", "registered_model", "trained_model"],
        ),
    ):
        parents = client.search_runs(
            [experiment.experiment_id], f"tags.{DAGSTER_RUN_TAG} = '{dagster_run_id}'"
        )
        assert len(parents) == 1
        parent = parents[0]
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["dagster.job"] == job
        children = client.search_runs(
            [experiment.experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'"
        )
        assert sorted(child.data.tags["dagster.asset_key"] for child in children) == assets
        for child in children:
            tags = child.data.tags
            key = dg.AssetKey(tags["dagster.asset_key"])
            assert child.info.status == "FINISHED"
            assert tags["dagster.run_id"] == dagster_run_id
            assert tags["dagster.code_version"] == graph.get(key).code_version
            assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", tags["git_commit"])
            assert tags["dagster.run_url"].endswith(f"/runs/{dagster_run_id}")


def test_evaluation_metrics_and_plots_are_logged(materialized: Materialized) -> None:
    found = run_materializations(materialized.instance, materialized.model_run_id)
    evaluation = found["model_evaluation"].metadata
    auc = evaluation["holdout_roc_auc"].value
    # March's leak-free figure for a search of 100 iterations is about 0.739 (contract.py,
    # QUICK_SEARCH); the bar keeps a margin of about the spread of the candidates that the
    # validation month cannot tell apart (see docs/model-lifecycle.md, *Model candidates*).
    assert isinstance(auc, float) and auc >= 0.72
    for plot in ("roc_curve", "pr_curve", "calibration_curve", "confusion_matrix"):
        assert str(evaluation[plot].value).startswith(f"![{plot}.png](data:image/png;base64,")
    run = materialized.client.get_run(str(evaluation["mlflow_run_id"].value))
    for metric in ("roc_auc", "pr_auc", "log_loss", "brier_score", "precision", "recall", "f1"):
        assert f"holdout_{metric}" in run.data.metrics
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(auc)
    artifacts = {a.path for a in materialized.client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {
        "plots/roc_curve.png",
        "plots/pr_curve.png",
        "plots/calibration_curve.png",
        "plots/confusion_matrix.png",
        "plots/feature_importance.png",
    }
    trained = materialized.client.get_run(
        str(found["trained_model"].metadata["mlflow_run_id"].value)
    )
    assert trained.data.params["holdout_month"] == HOLDOUT
    # The candidates: one nested run each under trained_model's run, and the table in Dagster.
    candidate_runs = materialized.client.search_runs(
        [trained.info.experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{trained.info.run_id}'"
    )
    table = found["trained_model"].metadata["candidates"]
    assert isinstance(table, dg.TableMetadataValue)
    rows: dict[str, dict[str, Any]] = {
        str(record.data["candidate"]): dict(record.data) for record in table.records
    }
    # Each boosting fit is also scored at 50 trees (max_iter is 100 here).
    assert sorted(rows) == ["hgb_1", "hgb_1@50", "hgb_2", "hgb_2@50", "logistic_regression"]
    by_name = {run.data.tags["candidate"]: run for run in candidate_runs}
    assert sorted(by_name) == sorted(rows)
    for name, run in by_name.items():
        assert run.data.params["validation_month"] == VALIDATION
        assert run.data.metrics["validation_roc_auc"] == pytest.approx(
            rows[name]["validation_roc_auc"], abs=1e-6
        )
    chosen = str(found["trained_model"].metadata["candidate"].value)
    best = max(row["validation_roc_auc"] for row in rows.values())
    # The best, or a cheaper candidate shown to be within the margin of it.
    assert rows[chosen]["validation_roc_auc"] == best or (
        rows[chosen]["auc_gap_high"] < SELECTION_MARGIN
    )
    assert trained.data.tags["candidate"] == chosen
    # Its threshold, chosen on the validation month, is the one the evaluation used.
    threshold = found["trained_model"].metadata["operating_threshold"].value
    assert isinstance(threshold, float) and 0 < threshold < 1
    assert evaluation["operating_threshold"].value == threshold
    evaluated = materialized.client.get_run(str(evaluation["mlflow_run_id"].value))
    assert evaluated.data.metrics["holdout_threshold"] == pytest.approx(threshold)
    # The rolling backtest: a fold needs two months before it, so on the first quarter it is
    # March, the evaluation itself (the refitted folds: ml/test_calibration_backtest.py).
    backtest = evaluation["backtest"]
    assert isinstance(backtest, dg.TableMetadataValue)
    folds: dict[str, dict[str, Any]] = {
        str(record.data["month"]): dict(record.data) for record in backtest.records
    }
    assert sorted(folds) == [HOLDOUT]
    assert folds[HOLDOUT]["trained_on"] == "2013-01..2013-02"
    assert folds[HOLDOUT]["roc_auc"] == pytest.approx(auc, abs=1e-4)
    aucs = [float(fold["roc_auc"]) for fold in folds.values()]
    assert evaluation["backtest_roc_auc_mean"].value == pytest.approx(
        sum(aucs) / len(aucs), abs=1e-4
    )
    assert evaluated.data.metrics["backtest_roc_auc_mean"] == pytest.approx(
        evaluation["backtest_roc_auc_mean"].value
    )


def _inputs(client: MlflowClient, run_id: str) -> dict[str, tuple[str, str]]:
    """A run's dataset inputs: name -> (digest, context)."""
    inputs = client.get_run(run_id).inputs
    assert inputs is not None
    return {
        entry.dataset.name: (
            entry.dataset.digest,
            next(tag.value for tag in entry.tags if tag.key == "mlflow.data.context"),
        )
        for entry in inputs.dataset_inputs
    }


def _listed(materialization: dg.AssetMaterialization) -> dict[str, tuple[str, str]]:
    """The ``mlflow_datasets`` table of a materialization: name -> (digest, context)."""
    table = materialization.metadata["mlflow_datasets"]
    assert isinstance(table, dg.TableMetadataValue)
    return {
        str(row.data["dataset"]): (str(row.data["digest"]), str(row.data["context"]))
        for row in table.records
    }


def test_mlflow_runs_record_the_partitions_they_read_and_the_champion_is_a_logged_model(
    materialized: Materialized,
) -> None:
    client, instance = materialized.client, materialized.instance
    versions = partition_data_versions(instance, dg.AssetKey("flight_features"), MONTHS)
    assert all(version and len(version) == 32 for version in versions.values())
    # Positive control: a digest taken from another asset's partitions would not pass.
    raw = partition_data_versions(instance, dg.AssetKey("raw_flights"), MONTHS)
    assert not set(raw.values()) & set(versions.values())

    def digests(months: list[str], context: str) -> dict[str, tuple[str, str]]:
        return {f"flight_features[{m}]": (str(versions[m]), context) for m in months}

    found = run_materializations(instance, materialized.model_run_id)
    trained, evaluation = found["trained_model"], found["model_evaluation"]
    expected_training = {
        **digests(MONTHS[:-2], "training"),
        **digests(MONTHS[-2:-1], "validation"),
        **digests(MONTHS[-1:], "holdout"),
    }
    training_run = str(trained.metadata["mlflow_run_id"].value)
    assert _inputs(client, training_run) == expected_training == _listed(trained)
    evaluation_run = str(evaluation.metadata["mlflow_run_id"].value)
    assert _inputs(client, evaluation_run) == digests(MONTHS[-1:], "holdout") == _listed(evaluation)
    for run_id, batch in zip(materialized.scoring_run_ids, BATCHES, strict=True):
        scored = run_partition_materializations(instance, run_id)
        predictions = scored[("flight_delay_predictions", batch[0])]
        assert _inputs(client, str(predictions.metadata["mlflow_run_id"].value)) == digests(
            batch, "scoring"
        )
        drift_run = str(scored[("feature_drift", batch[0])].metadata["mlflow_run_id"].value)
        # The reference is the rows the champion was fitted on (not its held-out month); a
        # month both scored and in the reference is recorded once, with both contexts.
        reference = {
            name: (digest, "drift reference")
            for name, (digest, context) in expected_training.items()
            if context != "holdout"
        }
        scored_months = digests(batch, "scoring")
        both = {
            name: (digest, "scoring, drift reference")
            for name, (digest, _) in scored_months.items()
            if name in reference
        }
        expected = {**reference, **scored_months, **both}
        assert (
            _inputs(client, drift_run) == expected == _listed(scored[("feature_drift", batch[0])])
        )

    # @champion's version is the LoggedModel trained_model logged, with its held-out metrics
    # measured on December's partition, and the candidates are LoggedModels beside it.
    version = client.get_model_version_by_alias("flight_delay_classifier", "champion")
    # MLflow's SQL registry keeps no model id column: the version's source names the model.
    source = str(version.source)
    assert source == trained.metadata["model_uri"].value and source.startswith("models:/m-")
    model = client.get_logged_model(source.removeprefix("models:/"))
    assert model.source_run_id == training_run
    assert model.params["candidate"] == trained.metadata["candidate"].value
    held_out = {metric.key: metric for metric in model.metrics or []}
    auc = held_out["holdout_roc_auc"]
    assert auc.value == pytest.approx(evaluation.metadata["holdout_roc_auc"].value)
    assert (auc.dataset_name, auc.dataset_digest) == (
        f"flight_features[{HOLDOUT}]",
        versions[HOLDOUT],
    )
    assert auc.run_id == evaluation_run
    assert "backtest_roc_auc_mean" in held_out
    listed = client.search_logged_models([model.experiment_id], max_results=100)
    candidates_listed = {m.name: m for m in listed if m.tags.get("role") == "candidate"}
    table = trained.metadata["candidates"]
    assert isinstance(table, dg.TableMetadataValue)
    assert set(candidates_listed) == {f"candidate-{row.data['candidate']}" for row in table.records}
    for row in table.records:
        candidate = candidates_listed[f"candidate-{row.data['candidate']}"]
        (metric,) = [m for m in candidate.metrics or [] if m.key == "validation_roc_auc"]
        assert metric.value == pytest.approx(row.data["validation_roc_auc"], abs=1e-6)
        assert metric.dataset_digest == versions[MONTHS[-2]]


def test_registered_version_is_champion_and_serves_probabilities(
    materialized: Materialized,
) -> None:
    client = materialized.client
    found = run_materializations(materialized.instance, materialized.model_run_id)
    registry = found["registered_model"].metadata
    version = client.get_model_version_by_alias("flight_delay_classifier", "champion")
    assert str(version.version) == registry["version"].value == "1"
    assert set(version.aliases) == {"champion", "challenger"}
    assert version.tags["gate"] == "passed"
    assert str(registry["model_version"].value).endswith(
        "/#/models/flight_delay_classifier/versions/1"
    )
    mlflow.set_tracking_uri(f"sqlite:///{materialized.data / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/flight_delay_classifier@champion")
    rows = pd.read_parquet(materialized.data / "lake" / "flight_features" / f"{HOLDOUT}.parquet")
    rows = rows.tail(50)
    predictions = model.predict(rows[list(FEATURE_COLUMNS)])
    assert list(predictions.columns) == ["delay_probability"]
    assert len(predictions) == 50
    assert predictions["delay_probability"].between(0, 1).all()
    assert predictions["delay_probability"].nunique() > 1


def test_failing_training_leaves_its_run_failed_and_champion_in_place(
    materialized: Materialized, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("out of memory while fitting")

    monkeypatch.setattr(candidates, "fit_candidate", crash)
    monkeypatch.setenv("MLOPS_DATA_DIR", str(materialized.data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{materialized.data / 'mlflow.db'}")
    client = materialized.client
    champion_before = client.get_model_version_by_alias("flight_delay_classifier", "champion")
    job = definitions.defs.resolve_job_def("retrain_job")
    result = job.execute_in_process(instance=materialized.instance, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data
    assert failure.user_failure_data is not None
    assert failure.user_failure_data.description == "RuntimeError: out of memory while fitting"
    retries = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert retries == []  # a crash that would happen again is not retried
    experiment = client.get_experiment_by_name("flight_delay")
    assert experiment is not None
    parent = client.search_runs(
        [experiment.experiment_id], f"tags.{DAGSTER_RUN_TAG} = '{result.run_id}'"
    )[0]
    assert parent.info.status == "FAILED"
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'"
    )
    assert [(c.data.tags["dagster.asset_key"], c.info.status) for c in children] == [
        ("trained_model", "FAILED")
    ]
    champion_after = client.get_model_version_by_alias("flight_delay_classifier", "champion")
    assert champion_after.version == champion_before.version
    assert len(client.search_model_versions("name = 'flight_delay_classifier'")) == 1


def test_new_features_make_the_automation_retrain_evaluate_and_register(
    materialized: Materialized, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_DATA_DIR", str(materialized.data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{materialized.data / 'mlflow.db'}")
    defs = definitions.defs
    settled = dg.evaluate_automation_conditions(defs=defs, instance=materialized.instance)
    assert settled.total_requested == 0  # everything is up to date after the rebuild
    refreshed = defs.resolve_job_def("month_job").execute_in_process(
        instance=materialized.instance, partition_key=VALIDATION
    )
    assert refreshed.success
    after = dg.evaluate_automation_conditions(
        defs=defs, instance=materialized.instance, cursor=settled.cursor
    )
    requested = {
        key.to_user_string()
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if after.get_num_requested(key)
    }
    # flight_features of February was rebuilt in the same run as its raw data: not requested again.
    assert requested == {"trained_model", "model_evaluation", "registered_model"}


def test_a_transient_fault_is_retried_in_a_new_nested_run(
    materialized: Materialized, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fit = candidates.fit_candidate
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("tracking server reset the connection")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(candidates, "fit_candidate", flaky)
    monkeypatch.setenv("MLOPS_DATA_DIR", str(materialized.data))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{materialized.data / 'mlflow.db'}")
    job = definitions.defs.resolve_job_def("retrain_job")
    result = job.execute_in_process(
        instance=materialized.instance,
        asset_selection=[dg.AssetKey("trained_model")],
        run_config={"ops": {"trained_model": {"config": {"max_iter": 20, "trials": 1}}}},
    )
    assert result.success
    retries = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    # The first fit failed; the retry fitted the two candidates, then refitted the winner,
    # and no earlier backtest fold on the first quarter.
    assert len(retries) == 1 and len(calls) == 1 + 3
    client = materialized.client
    experiment = client.get_experiment_by_name("flight_delay")
    assert experiment is not None
    parent = client.search_runs(
        [experiment.experiment_id], f"tags.{DAGSTER_RUN_TAG} = '{result.run_id}'"
    )[0]
    children = client.search_runs(
        [experiment.experiment_id],
        f"tags.`{PARENT_RUN_TAG}` = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    assert [(c.data.tags["dagster.attempt"], c.info.status) for c in children] == [
        ("1", "FAILED"),
        ("2", "FINISHED"),
    ]
    assert parent.info.status == "FINISHED"  # the retry succeeded


def test_a_month_that_has_not_landed_fails_with_the_command_to_run(
    project_env: Path, instance: dg.DagsterInstance
) -> None:
    assert layout.is_empty(project_env / "landing")
    instance.add_dynamic_partitions("month", ["2013-01"])
    result = dg.materialize(
        [raw_flights],
        resources=build_resources(),
        instance=instance,
        partition_key="2013-01",
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0]
    message = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert "mlops-assets seed" in str(message)


def _post(url: str, payload: object) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_served_champion_answers_like_the_in_process_model(
    materialized: Materialized, tmp_path: Path
) -> None:
    uri = f"sqlite:///{materialized.data / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    champion = "models:/flight_delay_classifier@champion"
    rows = pd.read_parquet(materialized.data / "lake" / "flight_features" / f"{HOLDOUT}.parquet")
    rows = rows[list(FEATURE_COLUMNS)].head(200)
    expected = mlflow.pyfunc.load_model(champion).predict(rows)["delay_probability"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    with model_server(champion, env, tmp_path / "logs") as url:
        split = json.loads(rows.to_json(orient="split", index=False, double_precision=15))
        status, answer = _post(url, {"dataframe_split": split})
        assert status == 200, answer
        served = [row["delay_probability"] for row in answer["predictions"]]
        assert served == pytest.approx(expected.tolist(), abs=1e-9)

        missing = {"columns": ["carrier"], "data": [["UA"]]}
        status, answer = _post(url, {"dataframe_split": missing})
        assert 400 <= status < 500
        assert "input is missing feature column(s): ['origin', 'dest'" in answer["message"]
        status, answer = _post(url, {"no_such_format": []})
        assert 400 <= status < 500 and answer["message"], answer
        assert http_ok(f"{url}/ping")  # still up after bad requests
