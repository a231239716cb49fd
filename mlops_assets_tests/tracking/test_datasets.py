"""Stored partitions as MLflow datasets and candidates as LoggedModels, against a real MLflow
SQLite store (no dagster)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from mlops_assets.resources.stored_partitions import StoredPartitions
from mlops_assets.tracking.datasets import (
    PartitionDataset,
    contexts_of_months,
    dataset_row,
    dataset_table,
    mlflow_type,
)
from mlops_assets.tracking.handle import RunHandle
from mlops_assets_tests.contract import mlflow_tracking_uri

VERSION = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (creating its tables takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def client(store: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    with mlflow_tracking_uri(store):
        yield MlflowClient(tracking_uri=store)


@pytest.fixture
def stored(tmp_path: Path) -> StoredPartitions:
    """Two months of a tiny hand-made table, stored as the lake stores them."""
    paths = {}
    for month, rows in (("2013-01", 3), ("2013-02", 2)):
        path = tmp_path / "flight_features" / f"{month}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(
            {
                "carrier": pd.Series(["UA", "AA", "B6"][:rows], dtype="string"),
                "distance": [1.5, 2.0, 3.25][:rows],
                "is_delayed": pd.Series([1, 0, 1][:rows], dtype="int8"),
                "scheduled": pd.to_datetime(["2013-01-01 05:15"] * rows),
            }
        )
        frame.to_parquet(path, index=False)
        paths[month] = path
    from upath import UPath

    return StoredPartitions("flight_features", {m: UPath(p) for m, p in paths.items()})


def _dataset(stored: StoredPartitions, month: str, digest: str = VERSION) -> PartitionDataset:
    rows, columns = stored.footer(month)
    return PartitionDataset("flight_features", month, digest, stored.location(month), rows, columns)


def test_the_footer_gives_rows_and_typed_columns(stored: StoredPartitions) -> None:
    rows, columns = stored.footer("2013-01")
    assert rows == 3
    assert [name for name, _ in columns] == ["carrier", "distance", "is_delayed", "scheduled"]
    schema = json.loads(_dataset(stored, "2013-01").schema_json())["mlflow_colspec"]
    assert [(c["name"], c["type"]) for c in schema] == [
        ("carrier", "string"),
        ("distance", "double"),
        ("is_delayed", "integer"),
        ("scheduled", "datetime"),
    ]


def test_an_unknown_arrow_type_is_named() -> None:
    assert mlflow_type("int64") == "long"
    with pytest.raises(ValueError, match=r"'list<item: int64>' has no MLflow column type"):
        mlflow_type("list<item: int64>")


@pytest.mark.parametrize("digest", ["", "f" * 64])
def test_a_data_version_that_cannot_be_a_digest_names_the_partition(
    stored: StoredPartitions, digest: str
) -> None:
    with pytest.raises(ValueError, match=r"flight_features\[2013-02\]: data version .* 36"):
        _dataset(stored, "2013-02", digest)
    assert _dataset(stored, "2013-02", "f" * 36).digest == "f" * 36  # the longest accepted


def test_the_validation_month_is_not_also_a_training_month() -> None:
    contexts = contexts_of_months(["2013-01", "2013-02", "2013-03"], "2013-03", "2013-04")
    assert contexts == {
        "2013-01": "training",
        "2013-02": "training",
        "2013-03": "validation",
        "2013-04": "holdout",
    }
    assert contexts_of_months(["2013-01"], None, "2013-02") == {
        "2013-01": "training",
        "2013-02": "holdout",
    }


def test_a_run_records_its_partitions_with_their_digests_and_contexts(
    client: MlflowClient, stored: StoredPartitions
) -> None:
    experiment = client.create_experiment("datasets")
    january, february = _dataset(stored, "2013-01"), _dataset(stored, "2013-02", "a" * 32)
    run = RunHandle(client.create_run(experiment).info.run_id, experiment)
    run.log_datasets({january: "training", february: "holdout"})
    run.log_metrics({"holdout_roc_auc": 0.7}, dataset=february)

    inputs = client.get_run(run.run_id).inputs
    assert inputs is not None
    found = {
        entry.dataset.name: (entry.dataset.digest, {t.key: t.value for t in entry.tags})
        for entry in inputs.dataset_inputs
    }
    assert found == {
        "flight_features[2013-01]": (VERSION, {"mlflow.data.context": "training"}),
        "flight_features[2013-02]": ("a" * 32, {"mlflow.data.context": "holdout"}),
    }
    entry = next(e for e in inputs.dataset_inputs if e.dataset.name.endswith("[2013-01]"))
    assert json.loads(str(entry.dataset.profile)) == {"num_rows": 3, "num_elements": 12}
    assert json.loads(str(entry.dataset.source)) == {"uri": stored.location("2013-01")}
    assert dataset_table({january: "training"}) == [
        {
            "dataset": "flight_features[2013-01]",
            "context": "training",
            "digest": VERSION,
            "rows": 3,
            "source": stored.location("2013-01"),
        }
    ]

    # Another run takes over the training inputs only, with its own context; a dataset it
    # also scores is recorded once, with both contexts.
    fitted_on = RunHandle.datasets_of(run.run_id, ("training",))
    assert [(d.name, d.digest) for d in fitted_on] == [("flight_features[2013-01]", VERSION)]
    drift = RunHandle(client.create_run(experiment).info.run_id, experiment)
    drift_inputs_logged = [
        *((dataset, "drift reference") for dataset in fitted_on),
        (january.entity(), "scoring"),
        (february.entity(), "scoring"),
    ]
    drift.log_dataset_entities(drift_inputs_logged)
    drift_inputs = client.get_run(drift.run_id).inputs
    assert drift_inputs is not None
    recorded = sorted((e.dataset.name, e.tags[0].value) for e in drift_inputs.dataset_inputs)
    assert recorded == [
        ("flight_features[2013-01]", "drift reference, scoring"),
        ("flight_features[2013-02]", "scoring"),
    ]
    assert dataset_row(fitted_on[0], "drift reference")["rows"] == 3


def test_a_candidate_is_a_logged_model_with_its_metrics_on_its_dataset(
    client: MlflowClient, stored: StoredPartitions
) -> None:
    experiment = client.create_experiment("candidates")
    run = RunHandle(client.create_run(experiment).info.run_id, experiment)
    validation = _dataset(stored, "2013-02")
    model_id = run.log_candidate_model(
        "candidate-hgb_1@50", {"learning_rate": 0.1}, {"validation_roc_auc": 0.71}, validation
    )
    model = client.get_logged_model(model_id)
    assert model.name == "candidate-hgb_1@50"
    assert str(model.status).endswith("READY")
    assert model.source_run_id == run.run_id
    assert model.params == {"learning_rate": "0.1"}
    assert model.tags["role"] == "candidate"
    (metric,) = model.metrics or []
    assert (metric.key, metric.value) == ("validation_roc_auc", 0.71)
    assert (metric.dataset_name, metric.dataset_digest) == ("flight_features[2013-02]", VERSION)
    listed = client.search_logged_models([experiment])
    assert [m.model_id for m in listed] == [model_id]
