"""The served model's fast path gives scikit-learn's probabilities exactly, on real flights."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModelContext
from sklearn.pipeline import Pipeline

from mlops_assets.ml.candidates import BOOSTING, LOGISTIC, Candidate, fit_candidate
from mlops_assets.ml.columns import FEATURE_COLUMNS
from mlops_assets.ml.pyfunc_model import ONE_THREAD_ROWS, FlightDelayModel, OrdinalCodes


def _served(pipeline: Pipeline, tmp_path: Path) -> FlightDelayModel:
    """The pyfunc as MLflow loads it: the pipeline from its cloudpickle artifact."""
    path = tmp_path / "classifier.pkl"
    path.write_bytes(cloudpickle.dumps(pipeline))
    model = FlightDelayModel()
    model.load_context(PythonModelContext({"classifier": str(path)}, {}))
    return model


@pytest.fixture(scope="module")
def rows(january_features: pd.DataFrame) -> pd.DataFrame:
    """Real January rows, plus what serving meets: an unknown carrier, missing values."""
    sample = january_features.sample(2_000, random_state=0).reset_index(drop=True)
    odd = sample.head(3).copy()
    odd["carrier"] = ["ZZ", None, "UA"]
    odd["plane_manufacturer"] = [None, "AIRBUS", "NEVER SEEN"]
    odd["temp"] = [np.nan, 20.0, np.nan]
    return pd.concat([sample, odd], ignore_index=True)


@pytest.fixture(scope="module")
def booster(january_features: pd.DataFrame) -> Pipeline:
    candidate = Candidate(
        "hgb",
        BOOSTING,
        {
            "learning_rate": 0.1,
            "max_iter": 40,
            "max_leaf_nodes": 15,
            "min_samples_leaf": 20,
            "l2_regularization": 0.0,
        },
    )
    return fit_candidate(candidate, january_features, seed=0)


def test_the_boosting_pipeline_is_served_by_its_codes_with_the_same_probabilities(
    booster: Pipeline, rows: pd.DataFrame, tmp_path: Path
) -> None:
    model = _served(booster, tmp_path)
    assert model.codes is not None  # the fast path is taken
    expected = booster.predict_proba(rows[list(FEATURE_COLUMNS)])[:, 1]
    for size in (1, 1_000, len(rows)):
        served = model.predict(None, rows.head(size))["delay_probability"].to_numpy()  # type: ignore[arg-type]
        np.testing.assert_array_equal(served, expected[:size])
    # The codes are those of scikit-learn's ColumnTransformer, unknown and missing included.
    encoder = booster.steps[0][1]
    np.testing.assert_array_equal(
        model.codes.transform(rows[list(FEATURE_COLUMNS)]),
        encoder.transform(rows[list(FEATURE_COLUMNS)]),
    )


def test_codes_in_another_order_would_be_caught(
    booster: Pipeline, rows: pd.DataFrame, tmp_path: Path
) -> None:
    """Positive control: the comparison above fails when a code is off."""
    model = _served(booster, tmp_path)
    assert model.codes is not None
    model.codes.categories[0] = model.codes.categories[0][::-1]  # carriers in reverse order
    expected = booster.predict_proba(rows[list(FEATURE_COLUMNS)])[:, 1]
    served = model.predict(None, rows)["delay_probability"].to_numpy()  # type: ignore[arg-type]
    assert not np.array_equal(served, expected)


def test_another_pipeline_shape_is_served_by_scikit_learn_itself(
    january_features: pd.DataFrame, rows: pd.DataFrame, tmp_path: Path
) -> None:
    baseline = fit_candidate(Candidate("lr", LOGISTIC, {"C": 1.0}), january_features, seed=0)
    assert OrdinalCodes.of(baseline) is None
    model = _served(baseline, tmp_path)
    expected = baseline.predict_proba(rows[list(FEATURE_COLUMNS)])[:, 1]
    served = model.predict(None, rows)["delay_probability"].to_numpy()  # type: ignore[arg-type]
    np.testing.assert_array_equal(served, expected)


def test_a_request_bigger_than_the_one_thread_limit_gives_the_same_probabilities(
    booster: Pipeline, january_features: pd.DataFrame, tmp_path: Path
) -> None:
    big = january_features.head(ONE_THREAD_ROWS + 1)
    model = _served(booster, tmp_path)
    expected = booster.predict_proba(big[list(FEATURE_COLUMNS)])[:, 1]
    served = model.predict(None, big)["delay_probability"].to_numpy()  # type: ignore[arg-type]
    np.testing.assert_array_equal(served, expected)
