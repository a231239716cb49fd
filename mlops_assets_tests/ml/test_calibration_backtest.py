"""The operating threshold, the calibration map and the rolling backtest, on real flights."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlops_assets.ml.backtest import backtest_months, rolling_backtest, summarize
from mlops_assets.ml.calibration import expected_calibration_error, f1_threshold
from mlops_assets.ml.candidates import (
    SearchSpace,
    fit_candidate,
    refit,
    select_and_train,
)
from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.evaluation import classification_metrics

QUICK = SearchSpace(trials=1, max_iter=30)


@pytest.fixture(scope="module")
def periods(january_features: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """January 2013's real feature rows cut into four week-long 'months', in time order."""
    day = january_features["sched_dep_utc"].dt.day
    edges = [(1, 8), (9, 16), (17, 24), (25, 31)]
    return {
        f"p{i}": january_features[day.between(low, high)].reset_index(drop=True)
        for i, (low, high) in enumerate(edges, start=1)
    }


def test_the_threshold_maximises_f1_and_the_calibration_error_is_binned() -> None:
    y = np.array([0, 0, 1, 1])
    # At 0.35: 2 of 3 flagged are late, both late flagged: F1 0.8, the best of the cuts.
    assert f1_threshold(y, np.array([0.1, 0.4, 0.35, 0.8])) == (0.35, pytest.approx(0.8))
    with pytest.raises(ValueError, match="no delayed flight"):
        f1_threshold(np.zeros(3), np.array([0.1, 0.2, 0.3]))
    assert expected_calibration_error(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.0
    assert expected_calibration_error(np.array([1, 1]), np.array([0.2, 0.2])) == pytest.approx(0.8)
    # Two bins: 0.1 with no late flight (gap 0.1), 0.9 with both (gap 0.1).
    assert expected_calibration_error(y, np.array([0.1, 0.1, 0.9, 0.9])) == pytest.approx(0.1)


def test_a_search_takes_its_threshold_from_the_validation_month(
    periods: dict[str, pd.DataFrame],
) -> None:
    train = {m: periods[m] for m in ("p1", "p2", "p3")}
    outcome = select_and_train(train, QUICK)
    chosen = next(r for r in outcome.results if r.candidate == outcome.chosen)
    validated = fit_candidate(
        outcome.chosen, pd.concat([periods["p1"], periods["p2"]]), QUICK.random_seed
    )
    proba = validated.predict_proba(periods["p3"][list(FEATURE_COLUMNS)])[:, 1]
    assert outcome.threshold == chosen.threshold == f1_threshold(periods["p3"][TARGET], proba)[0]
    assert outcome.calibration is None
    # A refit keeps the threshold its search chose.
    kept = refit(train, outcome.chosen, QUICK.random_seed, "refit", threshold=outcome.threshold)
    assert kept.threshold == outcome.threshold and kept.calibration is None


def test_a_sigmoid_calibration_maps_probabilities_without_reordering_them(
    periods: dict[str, pd.DataFrame],
) -> None:
    train = {m: periods[m] for m in ("p1", "p2", "p3")}
    outcome = select_and_train(train, QUICK, calibration="sigmoid")
    assert outcome.calibration is not None and outcome.calibration.month == "p3"
    assert outcome.threshold == outcome.calibration.threshold
    # Fitted on p1-p2 only: the validation month serves the map, not the fit.
    fitted = fit_candidate(
        outcome.chosen, pd.concat([periods["p1"], periods["p2"]]), QUICK.random_seed
    )
    rows = periods["p4"][list(FEATURE_COLUMNS)]
    raw, mapped = fitted.predict_proba(rows)[:, 1], outcome.model.predict_proba(rows)[:, 1]
    assert not np.allclose(raw, mapped)
    y = periods["p4"][TARGET]
    assert roc_auc_score(y, mapped) == pytest.approx(roc_auc_score(y, raw), abs=1e-12)
    # In-sample, the map cannot make the validation month's calibration much worse.
    assert outcome.calibration.error_after <= outcome.calibration.error_before + 0.01


def test_the_backtest_trains_each_fold_on_the_months_before_it(
    periods: dict[str, pd.DataFrame],
) -> None:
    assert backtest_months(list(periods), 4) == ["p3", "p4"]
    assert backtest_months(list(periods), 1) == ["p4"]
    assert backtest_months(list(periods), 0) == []
    candidate = select_and_train({m: periods[m] for m in ("p1", "p2")}, QUICK).chosen
    seen: list[list[str]] = []

    def fit(before: dict[str, pd.DataFrame]) -> object:
        seen.append(sorted(before))
        return refit(before, candidate, QUICK.random_seed, "backtest").model

    folds = rolling_backtest(periods, ["p3", "p4"], fit)  # type: ignore[arg-type]
    assert seen == [["p1", "p2"], ["p1", "p2", "p3"]]
    assert [(f.month, f.train_months) for f in folds] == [
        ("p3", ("p1", "p2")),
        ("p4", ("p1", "p2", "p3")),
    ]
    model = refit({m: periods[m] for m in ("p1", "p2", "p3")}, candidate, 42, "again").model
    proba = model.predict_proba(periods["p4"][list(FEATURE_COLUMNS)])[:, 1]
    expected = classification_metrics(periods["p4"][TARGET].to_numpy(), proba, 0.5)
    assert folds[1].metrics["roc_auc"] == expected.roc_auc
    assert folds[1].metrics["calibration_error"] == expected.calibration_error
    summary = summarize([fold.as_row() for fold in folds])
    aucs = [fold.metrics["roc_auc"] for fold in folds]
    assert summary["roc_auc_mean"] == statistics.fmean(aucs)
    assert summary["roc_auc_sd"] == statistics.stdev(aucs) > 0
    with pytest.raises(ValueError, match="no backtest fold"):
        summarize([])
