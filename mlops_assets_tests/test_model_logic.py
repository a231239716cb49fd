"""Pure model logic: temporal split, metrics on hand-checked inputs, the promotion gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score

from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.evaluation import classification_metrics, feature_importance
from mlops_assets.ml.promotion import (
    GateDecision,
    GateSettings,
    _weighted_aucs,
    absolute_floor_gate,
    champion_gate,
    paired_bootstrap_auc,
)
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
    january_features: pd.DataFrame,
) -> None:
    features = january_features
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


def test_weighted_auc_equals_scikit_learn_with_ties_and_resampled_rows() -> None:
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    scores = np.array([0.1, 0.4, 0.4, 0.8, 0.4, 0.2, 0.9, 0.3])  # three tied at 0.4
    assert _weighted_aucs(scores, y.astype(float), np.ones((1, 8)))[0] == pytest.approx(
        roc_auc_score(y, scores)
    )
    rows = np.array([0, 2, 2, 3, 4, 4, 4, 7])
    weights = np.bincount(rows, minlength=8).astype(float)[None]
    assert _weighted_aucs(scores, y.astype(float), weights)[0] == pytest.approx(
        roc_auc_score(y[rows], scores[rows])
    )


def _held_out(rows: int = 4000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    signal = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, rows), 0.01, 0.99)
    return y, signal


def _gate(y: np.ndarray, challenger: np.ndarray, champion: np.ndarray) -> GateDecision:
    def metrics(p: np.ndarray) -> dict[str, float]:
        return classification_metrics(y, p, threshold=0.5).as_dict()

    comparison = paired_bootstrap_auc(y, challenger, champion, seed=1)
    return champion_gate(metrics(challenger), comparison, metrics(champion), GateSettings())


def test_a_clearly_better_challenger_is_promoted() -> None:
    y, signal = _held_out()
    noisy = np.clip(signal + np.random.default_rng(9).normal(0, 0.3, len(y)), 0.01, 0.99)
    decision = _gate(y, signal, noisy)
    assert decision.promote, decision.reason
    assert decision.reason.startswith("promoted")


def test_an_identical_challenger_is_not_promoted_for_want_of_an_effect() -> None:
    y, signal = _held_out()
    decision = _gate(y, signal, signal.copy())
    assert not decision.promote
    assert "difference +0.0000 < minimum effect 0.0020" in decision.reason


def test_a_worse_challenger_keeps_the_champion() -> None:
    y, signal = _held_out()
    noisy = np.clip(signal + np.random.default_rng(9).normal(0, 0.3, len(y)), 0.01, 0.99)
    decision = _gate(y, noisy, signal)
    assert not decision.promote
    assert "not above -0.0050 (not worse)" in decision.reason


def test_a_better_ranking_with_worse_calibration_keeps_the_champion() -> None:
    y, signal = _held_out()
    noisy = np.clip(signal + np.random.default_rng(9).normal(0, 0.3, len(y)), 0.01, 0.99)
    overconfident = np.where(signal > 0.5, 0.999, 0.001)  # same order, extreme probabilities
    sharper = np.clip(overconfident + 1e-6 * signal, 0, 1)  # keep the ranking within ties
    decision = _gate(y, sharper, noisy)
    assert not decision.promote
    assert "log_loss" in decision.reason.split("kept the champion:")[1]


def test_without_a_champion_the_floor_decides() -> None:
    decision = champion_gate(
        {"roc_auc": 0.71, "log_loss": 0.5, "brier_score": 0.2}, None, None, GateSettings()
    )
    assert decision == GateDecision(
        True, "no champion yet; held-out ROC AUC 0.7100 >= floor 0.7000"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resamples": 999}, "at least 1,000"),
        ({"confidence": 1.0}, "within"),
    ],
)
def test_the_bootstrap_refuses_unusable_settings(kwargs: dict[str, float], message: str) -> None:
    y, signal = _held_out(rows=100)
    with pytest.raises(ValueError, match=message):
        paired_bootstrap_auc(y, signal, signal, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap_auc(y, signal, signal[:-1])
