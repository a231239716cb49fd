"""Model candidates on real January flights: seeded proposals, a fair comparison, one winner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_assets.ml.candidates import (
    BOOSTING,
    LOGISTIC,
    Candidate,
    SearchMode,
    SearchRecord,
    SearchSpace,
    build_candidate,
    decide_search,
    fit_candidate,
    propose_candidates,
    refit,
    search_fingerprint,
    select_and_train,
)
from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.evaluation import feature_importance

QUICK = SearchSpace(trials=2, max_iter=20)


@pytest.fixture(scope="module")
def periods(january_features: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """January 2013's real feature rows cut into three ten-day 'months', keyed in time order."""
    day = january_features["sched_dep_utc"].dt.day
    return {
        "p1": january_features[day <= 10].reset_index(drop=True),
        "p2": january_features[(day > 10) & (day <= 20)].reset_index(drop=True),
        "p3": january_features[day > 20].reset_index(drop=True),
    }


def test_proposals_are_the_baseline_then_a_seeded_draw_from_the_grid() -> None:
    first, again = propose_candidates(QUICK), propose_candidates(QUICK)
    assert first == again
    assert [(c.name, c.family) for c in first] == [
        ("logistic_regression", LOGISTIC),
        ("hgb_1", BOOSTING),
        ("hgb_2", BOOSTING),
    ]
    grid = {
        (lr, leaves, leaf, l2)
        for lr in QUICK.learning_rate
        for leaves in QUICK.max_leaf_nodes
        for leaf in QUICK.min_samples_leaf
        for l2 in QUICK.l2_regularization
    }
    names = ("learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization")
    drawn = [tuple(c.params[name] for name in names) for c in first[1:]]
    assert set(drawn) <= grid and len(set(drawn)) == 2
    draws = {
        tuple(str(c.params) for c in propose_candidates(SearchSpace(trials=3, random_seed=seed)))
        for seed in range(6)
    }
    assert len(draws) > 1  # the seed decides the draw
    everything = propose_candidates(SearchSpace(trials=1000, include_baseline=False))
    assert len(everything) == len(grid)  # never more than the grid holds
    with pytest.raises(ValueError, match="no model candidate"):
        propose_candidates(SearchSpace(trials=0, include_baseline=False))
    with pytest.raises(ValueError, match="unknown model family 'svm'"):
        build_candidate(Candidate("svm_1", "svm"), seed=1)


def test_the_best_validation_auc_wins_and_is_refitted_on_every_training_month(
    periods: dict[str, pd.DataFrame],
) -> None:
    outcome = select_and_train(periods, QUICK, workers=1)
    assert outcome.validation_month == "p3"
    assert [r.candidate.name for r in outcome.results] == ["logistic_regression", "hgb_1", "hgb_2"]
    best = max(outcome.results, key=lambda result: result.roc_auc)
    assert outcome.chosen == best.candidate
    assert outcome.selection.startswith(f"{best.candidate.name}: best validation ROC AUC")
    assert all(
        0.5 < r.roc_auc < 1 and r.log_loss > 0 and r.fit_seconds > 0 for r in outcome.results
    )
    # Refitted on p1..p3 together, not the p1..p2 fit that was validated.
    everything = pd.concat(periods.values(), ignore_index=True)
    refit = fit_candidate(best.candidate, everything, QUICK.random_seed)
    rows = everything[list(FEATURE_COLUMNS)].head(500)
    np.testing.assert_array_equal(outcome.model.predict_proba(rows), refit.predict_proba(rows))
    validated = fit_candidate(
        best.candidate, pd.concat([periods["p1"], periods["p2"]]), QUICK.random_seed
    )
    assert not np.array_equal(outcome.model.predict_proba(rows), validated.predict_proba(rows))


def test_parallel_workers_give_the_same_comparison(periods: dict[str, pd.DataFrame]) -> None:
    alone = select_and_train(periods, QUICK, workers=1)
    together = select_and_train(periods, QUICK, workers=2)
    assert [r.roc_auc for r in together.results] == [r.roc_auc for r in alone.results]
    assert together.chosen == alone.chosen


def test_with_one_training_month_there_is_no_comparison(periods: dict[str, pd.DataFrame]) -> None:
    outcome = select_and_train({"p1": periods["p1"]}, QUICK)
    assert outcome.results == [] and outcome.validation_month is None
    assert outcome.chosen.name == "hgb_1"
    assert "no validation month" in outcome.selection


def test_importance_of_the_one_hot_baseline_is_per_feature(
    periods: dict[str, pd.DataFrame],
) -> None:
    baseline = propose_candidates(QUICK)[0]
    model = fit_candidate(baseline, periods["p1"], seed=3)
    rows = periods["p2"][list(FEATURE_COLUMNS)]
    importance = feature_importance(
        model, rows, periods["p2"][TARGET].to_numpy(), sample_rows=400, seed=3
    )
    # One value per raw feature, although the encoder spreads categoricals over many columns.
    assert sorted(importance.index) == sorted(FEATURE_COLUMNS)
    assert importance.abs().sum() > 0


def _record(fingerprint: str = "f1") -> SearchRecord:
    chosen = Candidate("hgb_1", BOOSTING, {"learning_rate": 0.05, "max_leaf_nodes": 15})
    return SearchRecord(fingerprint, chosen, "run-a")


@pytest.mark.parametrize(
    ("mode", "requested_by", "previous", "search", "reason"),
    [
        ("full", None, _record(), True, "the run's configuration asks for one"),
        ("auto", "weekly_retrain_schedule", _record(), True, "requested by weekly_retrain"),
        ("auto", None, None, True, "no earlier search is recorded"),
        ("auto", None, _record("f0"), True, "the search configuration or the features changed"),
        ("auto", None, _record(), False, "refit of hgb_1, chosen by the search of run run-a"),
    ],
)
def test_a_retraining_searches_only_when_asked_or_when_the_search_changed(
    mode: SearchMode,
    requested_by: str | None,
    previous: SearchRecord | None,
    search: bool,
    reason: str,
) -> None:
    decision = decide_search(mode, requested_by, previous, "f1")
    assert decision.search is search
    assert reason in decision.reason


def test_the_search_fingerprint_follows_the_search_space_and_nothing_else() -> None:
    assert search_fingerprint(SearchSpace()) == search_fingerprint(SearchSpace())
    assert search_fingerprint(SearchSpace(max_iter=100)) != search_fingerprint(SearchSpace())
    assert search_fingerprint(SearchSpace(random_seed=1)) != search_fingerprint(SearchSpace())


def test_a_search_record_survives_json_and_names_what_is_malformed() -> None:
    record = _record()
    assert SearchRecord.from_dict(json.loads(json.dumps(record.as_dict()))) == record
    with pytest.raises(ValueError, match=r"malformed search record .*'chosen'"):
        SearchRecord.from_dict({"fingerprint": "f1", "searched_in": "run-a"})


def test_a_refit_fits_the_chosen_configuration_on_every_training_month(
    january_features: pd.DataFrame,
) -> None:
    by_month = {"2013-01": january_features.head(3000), "2013-02": january_features.tail(3000)}
    params = {"learning_rate": 0.1, "max_iter": 20, "max_leaf_nodes": 15}
    chosen = Candidate(
        "hgb_1", BOOSTING, {**params, "min_samples_leaf": 20, "l2_regularization": 0.0}
    )
    outcome = refit(by_month, chosen, seed=42, reason="refit of hgb_1")
    assert outcome.chosen == chosen and outcome.results == [] and outcome.validation_month is None
    assert outcome.selection == "refit of hgb_1"
    classifier = outcome.model.named_steps["classify"]
    assert classifier.max_iter == 20 and classifier.learning_rate == 0.1
    assert classifier.n_iter_ == 20
    assert len(outcome.model.predict_proba(january_features.head(5))) == 5
