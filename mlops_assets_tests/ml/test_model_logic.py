"""Pure model logic: temporal split, metrics on hand-checked inputs, the promotion gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score

from mlops_assets.ml import evaluation, promotion
from mlops_assets.ml.candidates import LOGISTIC, Candidate, fit_candidate
from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.evaluation import classification_metrics, feature_importance
from mlops_assets.ml.promotion import (
    GateDecision,
    GateSettings,
    _weighted_aucs,
    absolute_floor_gate,
    bootstrap_aucs,
    champion_gate,
    departure_days,
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


def _days(rows: int, days: int = 30) -> np.ndarray:
    return np.arange(rows) % days


def _gate(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    settings: GateSettings | None = None,
) -> GateDecision:
    def metrics(p: np.ndarray) -> dict[str, float]:
        return classification_metrics(y, p, threshold=0.5).as_dict()

    comparison = paired_bootstrap_auc(y, challenger, champion, _days(len(y)), seed=1)
    assert comparison.blocks == 30
    return champion_gate(
        metrics(challenger), comparison, metrics(champion), settings or GateSettings()
    )


def test_a_clearly_better_challenger_is_promoted() -> None:
    y, signal = _held_out()
    noisy = np.clip(signal + np.random.default_rng(9).normal(0, 0.3, len(y)), 0.01, 0.99)
    decision = _gate(y, signal, noisy)
    assert decision.promote, decision.reason
    assert decision.reason.startswith("promoted")


def test_an_identical_challenger_is_not_measurably_better() -> None:
    y, signal = _held_out()
    decision = _gate(y, signal, signal.copy())
    assert not decision.promote
    assert (
        "AUC difference +0.0000, 95% interval [+0.0000, +0.0000] (1000 resamples, 30 days "
        "resampled): lower bound not above +0.0010 (not measurably better)" in decision.reason
    )
    # A negative bound is a non-inferiority rule: the same model passes it.
    assert _gate(y, signal, signal.copy(), GateSettings(min_lower_bound=-0.005)).promote


def test_a_worse_challenger_keeps_the_champion() -> None:
    y, signal = _held_out()
    noisy = np.clip(signal + np.random.default_rng(9).normal(0, 0.3, len(y)), 0.01, 0.99)
    decision = _gate(y, noisy, signal)
    assert not decision.promote
    assert "not measurably better" in decision.reason
    assert not _gate(y, noisy, signal, GateSettings(min_lower_bound=-0.005)).promote


def test_a_challenger_better_on_the_point_estimate_only_is_not_promoted() -> None:
    y, signal = _held_out()
    challenger, champion = (
        np.clip(signal + np.random.default_rng(seed).normal(0, 0.1, len(y)), 0.01, 0.99)
        for seed in (6, 7)
    )
    comparison = paired_bootstrap_auc(y, challenger, champion, _days(len(y)), seed=1)
    # Better by more than the old rule's minimum effect (0.002), but within the noise.
    assert comparison.delta > 0.002 and comparison.low < 0
    decision = _gate(y, challenger, champion)
    assert not decision.promote and "not measurably better" in decision.reason


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
    days = _days(100)
    with pytest.raises(ValueError, match=message):
        paired_bootstrap_auc(y, signal, signal, days, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap_auc(y, signal, signal[:-1], days)
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap_auc(y, signal, signal, days[:-1])


def test_the_block_bootstrap_refuses_blocks_it_cannot_resample() -> None:
    y, signal = _held_out(rows=100)
    with pytest.raises(ValueError, match="fall in 1 block"):
        paired_bootstrap_auc(y, signal, signal, np.zeros(100))
    # Two days, one with late flights only, one with on-time flights only: some resamples
    # draw one of them twice and hold a single class.
    with pytest.raises(ValueError, match="single class: too few blocks"):
        paired_bootstrap_auc(y, signal, signal, y.copy())


def test_a_resample_weights_every_row_by_how_often_its_day_was_drawn() -> None:
    y, signal = _held_out(rows=600)
    days = _days(600, days=12)
    scored = bootstrap_aucs(y, [signal], days, resamples=1000, seed=5)
    # The first resample, drawn by hand: 12 days with replacement, each with all its rows.
    drawn = np.random.default_rng(5).integers(0, 12, size=(100, 12))[0]
    rows = np.concatenate([np.flatnonzero(days == day) for day in drawn])
    assert scored.resampled[0, 0] == pytest.approx(roc_auc_score(y[rows], signal[rows]))
    assert scored.aucs[0] == pytest.approx(roc_auc_score(y, signal))
    assert scored.blocks == 12


def test_the_block_matrix_and_the_row_weights_give_the_same_resamples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    y, signal = _held_out(rows=3000)
    rounded = np.round(signal, 2)  # many ties
    days = np.random.default_rng(2).integers(0, 31, 3000)
    by_matrix = bootstrap_aucs(y, [signal, rounded], days, seed=7)
    monkeypatch.setattr(promotion, "_MATRIX_BLOCKS", 0)
    by_weights = bootstrap_aucs(y, [signal, rounded], days, seed=7)
    np.testing.assert_allclose(by_matrix.resampled, by_weights.resampled, rtol=0, atol=1e-12)
    assert by_matrix.compare(0, 1) == by_weights.compare(0, 1)


def test_a_shared_daily_shock_widens_the_day_interval_but_not_the_row_one() -> None:
    """Positive control: when a day's flights share a shock, rows are not independent."""
    rng = np.random.default_rng(11)
    days = np.repeat(np.arange(30), 200)
    shock = rng.normal(0, 1.0, 30)[days]  # a day both models misjudge, differently
    y = rng.integers(0, 2, len(days))
    base = (y - 0.5) * 0.6 + rng.normal(0, 0.5, len(days))
    challenger = base + np.where(y == 1, 1, -1) * 0.1 * shock
    champion = base - np.where(y == 1, 1, -1) * 0.1 * shock
    by_day = paired_bootstrap_auc(y, challenger, champion, days)
    by_row = paired_bootstrap_auc(y, challenger, champion, np.arange(len(days)))
    assert (by_row.high - by_row.low) < 0.6 * (by_day.high - by_day.low)
    calm = np.arange(len(days)) % 30  # the same rows in days without a shared shock
    shuffled = rng.permutation(calm)
    by_calm_day = paired_bootstrap_auc(y, challenger, champion, shuffled)
    assert (by_row.high - by_row.low) == pytest.approx(by_calm_day.high - by_calm_day.low, rel=0.25)


@pytest.mark.parametrize(
    ("utc", "local_day"),
    [
        ("2013-01-02 03:30", "2013-01-01"),  # 22:30 the evening before (EST, UTC-5)
        ("2013-01-02 05:00", "2013-01-02"),  # midnight
        ("2013-07-01 03:30", "2013-06-30"),  # 23:30 (EDT, UTC-4)
        ("2013-07-01 04:00", "2013-07-01"),
    ],
)
def test_a_flight_s_day_is_the_local_date_of_its_scheduled_departure(
    utc: str, local_day: str
) -> None:
    naive = pd.Series(pd.to_datetime([utc]))
    assert departure_days(naive)[0] == np.datetime64(local_day)
    assert departure_days(naive.dt.tz_localize("UTC"))[0] == np.datetime64(local_day)


def test_departure_days_refuse_missing_or_untimed_rows() -> None:
    with pytest.raises(ValueError, match="1 of 2 rows have no scheduled departure"):
        departure_days(pd.Series(pd.to_datetime(["2013-01-01 10:00", None])))
    with pytest.raises(ValueError, match="must be times"):
        departure_days(pd.Series(["2013-01-01 10:00"]))


def test_permuting_raw_columns_in_stacked_calls_gives_scikit_learn_s_importances(
    january_features: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-hot baseline permutes raw columns; a few columns per call, as on big samples."""
    early = january_features["sched_dep_utc"] < pd.Timestamp("2013-01-20")
    model = fit_candidate(Candidate("lr", LOGISTIC, {"C": 1.0}), january_features[early], seed=0)
    rows = january_features.loc[~early, list(FEATURE_COLUMNS)].head(300)
    y = january_features.loc[rows.index, TARGET].to_numpy()
    monkeypatch.setattr(evaluation, "PERMUTED_ROWS_PER_CALL", 2_000)  # 2 columns a call
    drops = evaluation.permuted_auc_drops(model, rows, y, n_repeats=3, seed=5)
    naive = permutation_importance(model, rows, y, scoring="roc_auc", n_repeats=3, random_state=5)
    np.testing.assert_allclose(drops, naive.importances_mean, rtol=0, atol=1e-12)
    assert np.abs(drops).sum() > 0
