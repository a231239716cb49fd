"""Pure model logic: temporal split, metrics on hand-checked inputs, the promotion gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.ml.evaluation import classification_metrics
from mlops_assets.ml.promotion import absolute_floor_gate
from mlops_assets.ml.training import temporal_split


def _features(months: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"month": months, "is_delayed": [0, 1] * (len(months) // 2)})


def test_temporal_split_holds_out_the_newest_month() -> None:
    split = temporal_split(_features([1, 1, 3, 3, 2, 2]))
    assert split.holdout_month == 3
    assert split.train_months == [1, 2]
    assert set(split.train["month"]) == {1, 2}
    assert set(split.holdout["month"]) == {3}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_features([4, 4]), "at least two months"),
        (pd.DataFrame({"month": [1, 1, 2, 2], "is_delayed": [0, 1, 0, 0]}), "held-out"),
    ],
)
def test_temporal_split_refuses_unusable_inputs(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        temporal_split(frame)


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
