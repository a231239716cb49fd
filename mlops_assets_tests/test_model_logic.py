"""Pure model logic: temporal split, metrics on hand-checked inputs, the promotion gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance

from mlops_assets import landing
from mlops_assets.ml import raw
from mlops_assets.ml.evaluation import classification_metrics, feature_importance
from mlops_assets.ml.features import FEATURE_COLUMNS, TARGET, build_month_features
from mlops_assets.ml.promotion import absolute_floor_gate
from mlops_assets.ml.training import TrainingSettings, temporal_split, train_classifier


def _month(number: int, labels: tuple[int, ...] = (0, 1)) -> pd.DataFrame:
    return pd.DataFrame({"month": [number] * len(labels), "is_delayed": list(labels)})


def test_temporal_split_holds_out_the_newest_month_whatever_the_order() -> None:
    by_month = {"2014-01": _month(1), "2013-11": _month(11), "2013-12": _month(12)}
    split = temporal_split(by_month)
    assert split.holdout_month == "2014-01"
    assert split.train_months == ["2013-11", "2013-12"]
    assert list(split.train["month"]) == [11, 11, 12, 12]
    assert set(split.holdout["month"]) == {1}


@pytest.mark.parametrize(
    ("by_month", "message"),
    [
        ({"2013-04": _month(4)}, "at least two months"),
        ({"2013-01": _month(1), "2013-02": _month(2, (0, 0))}, r"held-out rows \(2013-02\)"),
        ({"2013-01": _month(1, (1, 1)), "2013-02": _month(2)}, r"training rows \(2013-01\)"),
    ],
)
def test_temporal_split_refuses_unusable_inputs(
    by_month: dict[str, pd.DataFrame], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        temporal_split(by_month)


def test_metrics_match_hand_computed_values() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.6, 0.4, 0.8])
    metrics = classification_metrics(y, proba, threshold=0.5)
    # Pairs (positive, negative) ranked right: (0.4>0.1), (0.8>0.1), (0.8>0.6); wrong: (0.4<0.6).
    assert metrics.roc_auc == pytest.approx(0.75)
    assert metrics.precision == pytest.approx(0.5)  # flagged 0.6 and 0.8, one is late
    assert metrics.recall == pytest.approx(0.5)
    assert metrics.brier_score == pytest.approx((0.01 + 0.36 + 0.36 + 0.04) / 4)
    assert metrics.rows == 4


def test_metrics_refuse_a_single_class() -> None:
    with pytest.raises(ValueError, match="single class"):
        classification_metrics(np.array([1, 1]), np.array([0.2, 0.9]), threshold=0.5)


@pytest.mark.parametrize(
    ("auc", "floor", "promote"), [(0.73, 0.70, True), (0.70, 0.70, True), (0.69, 0.70, False)]
)
def test_floor_gate(auc: float, floor: float, promote: bool) -> None:
    decision = absolute_floor_gate(auc, floor)
    assert decision.promote is promote
    assert f"{auc:.4f}" in decision.reason


def test_floor_gate_rejects_impossible_auc() -> None:
    with pytest.raises(ValueError, match="within"):
        absolute_floor_gate(float("nan"), 0.7)


def test_importance_on_encoded_rows_equals_permuting_the_raw_columns(
    seeded_landing: Path,
) -> None:
    read = raw.read_raw_csv
    features, _ = build_month_features(
        "2013-01",
        read(landing.monthly_file(seeded_landing, "flights", "2013-01"), raw.FLIGHTS_SCHEMA),
        read(landing.monthly_file(seeded_landing, "weather", "2013-01"), raw.WEATHER_SCHEMA),
        read(seeded_landing / landing.PLANES_FILE, raw.PLANES_SCHEMA),
    )
    early = features["sched_dep_utc"] < pd.Timestamp("2013-01-20")
    model = train_classifier(features[early], TrainingSettings(max_iter=20))
    rows, y = features.loc[~early, list(FEATURE_COLUMNS)], features.loc[~early, TARGET].to_numpy()
    fast = feature_importance(model, rows, y, sample_rows=800, seed=7)
    sample = rows.sample(n=800, random_state=7)
    naive = permutation_importance(
        model,
        sample,
        y[rows.index.get_indexer(sample.index)],
        scoring="roc_auc",
        n_repeats=3,
        random_state=7,
    )
    expected = pd.Series(naive.importances_mean, index=rows.columns)
    pd.testing.assert_series_equal(fast.sort_index(), expected.sort_index())
    assert fast.abs().sum() > 0  # something matters to the model
