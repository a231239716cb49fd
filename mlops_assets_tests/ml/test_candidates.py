"""Model candidates on real January flights: seeded proposals, a fair comparison, one winner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops_assets.ml.candidates import (
    BOOSTING,
    LOGISTIC,
    SELECTION_MARGIN,
    Candidate,
    CandidateResult,
    SearchMode,
    SearchRecord,
    SearchSpace,
    build_candidate,
    candidate_cost,
    compact_training_months,
    compare_candidates,
    decide_search,
    fit_candidate,
    propose_candidates,
    refit,
    search_fingerprint,
    select_and_train,
    select_candidate,
    staged_probabilities,
    validation_split,
)
from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.evaluation import feature_importance
from mlops_assets.ml.promotion import DEPARTURE_COLUMN, AucComparison
from mlops_assets.ml.training import TRAINING_COLUMNS

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


def test_the_cheapest_candidate_within_the_margin_wins_and_is_refitted_on_every_month(
    periods: dict[str, pd.DataFrame],
) -> None:
    outcome = select_and_train(periods, QUICK, workers=1)
    assert outcome.validation_month == "p3"
    assert [r.candidate.name for r in outcome.results] == ["logistic_regression", "hgb_1", "hgb_2"]
    best = max(outcome.results, key=lambda result: result.roc_auc)
    assert best.gap is not None and (best.gap.delta, best.gap.low, best.gap.high) == (0, 0, 0)
    for result in outcome.results:
        assert result.gap is not None and result.gap.blocks == 12  # p3's local days
        assert result.gap.delta == pytest.approx(best.roc_auc - result.roc_auc, abs=1e-9)
    within = [r for r in outcome.results if r.gap and r.gap.high < SELECTION_MARGIN]
    expected = min(within, key=lambda r: candidate_cost(r.candidate))
    assert outcome.chosen == expected.candidate
    assert outcome.selection.startswith(f"{expected.candidate.name}: ")
    assert f"best validation ROC AUC {best.roc_auc:.4f} ({best.candidate.name})" in (
        outcome.selection
    )
    assert all(
        0.5 < r.roc_auc < 1 and r.log_loss > 0 and r.fit_seconds > 0 for r in outcome.results
    )
    # Refitted on p1..p3 together, not the p1..p2 fit that was validated.
    everything = pd.concat(periods.values(), ignore_index=True)
    refit = fit_candidate(outcome.chosen, everything, QUICK.random_seed)
    rows = everything[list(FEATURE_COLUMNS)].head(500)
    np.testing.assert_array_equal(outcome.model.predict_proba(rows), refit.predict_proba(rows))
    validated = fit_candidate(
        outcome.chosen, pd.concat([periods["p1"], periods["p2"]]), QUICK.random_seed
    )
    assert not np.array_equal(outcome.model.predict_proba(rows), validated.predict_proba(rows))


def test_parallel_workers_give_the_same_comparison(periods: dict[str, pd.DataFrame]) -> None:
    alone = select_and_train(periods, QUICK, workers=1)
    together = select_and_train(periods, QUICK, workers=2)
    assert [r.roc_auc for r in together.results] == [r.roc_auc for r in alone.results]
    assert [r.gap for r in together.results] == [r.gap for r in alone.results]
    assert together.chosen == alone.chosen


def test_a_boosting_fit_is_also_scored_at_fewer_trees(periods: dict[str, pd.DataFrame]) -> None:
    params = {"learning_rate": 0.1, "max_leaf_nodes": 15, "min_samples_leaf": 20}
    candidate = Candidate("hgb_1", BOOSTING, {**params, "l2_regularization": 0.0, "max_iter": 120})
    model = fit_candidate(candidate, periods["p1"], seed=3)
    rows = periods["p2"][list(FEATURE_COLUMNS)]
    staged = staged_probabilities(candidate, model, rows)
    assert [(c.name, c.params["max_iter"]) for c, _ in staged] == [
        ("hgb_1@50", 50),
        ("hgb_1@100", 100),
        ("hgb_1", 120),
    ]
    np.testing.assert_array_equal(staged[-1][1], model.predict_proba(rows)[:, 1])
    # A stage is the model that many trees fit: what a refit of the variant trains.
    fifty = fit_candidate(staged[0][0], periods["p1"], seed=3)
    np.testing.assert_array_equal(staged[0][1], fifty.predict_proba(rows)[:, 1])
    assert candidate_cost(staged[0][0]) < candidate_cost(staged[1][0]) < candidate_cost(candidate)


def test_on_real_flights_the_baseline_is_measurably_worse_and_stages_are_compared(
    periods: dict[str, pd.DataFrame],
) -> None:
    # A strongly regularized baseline: cheapest, and clearly worse than boosting.
    space = SearchSpace(trials=1, max_iter=120, logistic_c=1e-4)
    split = validation_split(periods)
    assert split is not None
    results = compare_candidates(propose_candidates(space), split, space.random_seed)
    names = [r.candidate.name for r in results]
    assert names == ["logistic_regression", "hgb_1@50", "hgb_1@100", "hgb_1"]
    by_name = {r.candidate.name: r for r in results}
    baseline = by_name["logistic_regression"]
    # Positive control: the interval can exclude 0. The baseline is cheapest, but worse.
    assert baseline.gap is not None and baseline.gap.low > 0.002, baseline.gap
    selection = select_candidate(results, split.validation_month)
    assert selection.chosen is not baseline
    assert selection.chosen.within_margin
    cheaper = [
        r
        for r in results
        if candidate_cost(r.candidate) < candidate_cost(selection.chosen.candidate)
    ]
    assert all(not r.within_margin for r in cheaper)


def _result(
    name: str, family: str, auc: float, low: float, high: float, **params: int
) -> CandidateResult:
    gap = AucComparison(0.75, auc, 0.75 - auc, low, high, 0.95, 1000, blocks=30)
    return CandidateResult(Candidate(name, family, params), auc, 0.5, 0.2, 1.0, gap)


def test_the_cheapest_candidate_within_the_margin_is_preferred_and_a_worse_one_is_not() -> None:
    best = _result("hgb_1", BOOSTING, 0.75, 0.0, 0.0, max_iter=300, max_leaf_nodes=31)
    fewer_trees = _result(
        "hgb_1@100", BOOSTING, 0.748, -0.001, 0.0049, max_iter=100, max_leaf_nodes=31
    )
    fewest = _result("hgb_1@50", BOOSTING, 0.74, 0.004, 0.016, max_iter=50, max_leaf_nodes=31)
    baseline = _result("logistic_regression", LOGISTIC, 0.70, 0.04, 0.06)
    results = [baseline, fewest, fewer_trees, best]
    selection = select_candidate(results, "2013-11")
    assert selection.best is best and selection.chosen is fewer_trees
    assert selection.reason == (
        "hgb_1@100: the cheapest candidate within 0.005 of the best validation ROC AUC "
        "0.7500 (hgb_1) of 4 candidates on 2013-11: it scores 0.7480, AUC(best) - "
        "AUC(hgb_1@100) +0.0020, 95% interval [-0.0010, +0.0049] (1000 resamples, 30 days "
        "resampled) is below 0.005, so it is at most that much worse and costs less (100 trees "
        "x 31 leaves against 300 trees x 31 leaves)"
    )
    # Positive control: once the cheaper one may be 0.005 worse or more, the best stays,
    # even though its interval includes 0 (a wide interval is not evidence of equivalence).
    worse = _result("hgb_1@100", BOOSTING, 0.748, -0.001, 0.005, max_iter=100, max_leaf_nodes=31)
    kept = select_candidate([baseline, fewest, worse, best], "2013-11")
    assert kept.chosen is best
    assert kept.reason.startswith("hgb_1: best validation ROC AUC 0.7500 (hgb_1) of 4 candidates")
    assert "none of the 3 cheaper candidates is shown to be within 0.005 of it (the closest: " in (
        kept.reason
    )
    assert "AUC(hgb_1@100) +0.0020, 95% interval [-0.0010, +0.0050]" in kept.reason
    # The baseline is cheapest of all: within the margin, it wins.
    close = _result("logistic_regression", LOGISTIC, 0.749, -0.002, 0.004)
    assert select_candidate([close, fewest, fewer_trees, best], "2013-11").chosen is close
    row = fewer_trees.as_row()
    assert (row["auc_gap_to_best"], row["auc_gap_low"], row["auc_gap_high"]) == (
        0.002,
        -0.001,
        0.0049,
    )
    with pytest.raises(ValueError, match="hgb_2 was not compared to the best"):
        select_candidate(
            [best, CandidateResult(Candidate("hgb_2", BOOSTING), 0.7, 0.5, 0.2, 1.0)], "m"
        )


def test_only_the_validation_month_keeps_its_departure_times(
    periods: dict[str, pd.DataFrame],
) -> None:
    compact = compact_training_months(periods)
    assert [list(compact[m].columns) for m in ("p1", "p2")] == [list(TRAINING_COLUMNS)] * 2
    assert list(compact["p3"].columns) == [*TRAINING_COLUMNS, DEPARTURE_COLUMN]
    split = validation_split(compact)
    assert split is not None and list(split.fit.columns) == list(TRAINING_COLUMNS)
    with pytest.raises(KeyError, match="the validation month p3 lacks 'sched_dep_utc'"):
        validation_split({**compact, "p3": compact["p3"][list(TRAINING_COLUMNS)]})
    # The refit on every month has the model's columns only.
    outcome = refit(compact, Candidate("logistic_regression", LOGISTIC, {"C": 1.0}), 1, "refit")
    assert list(outcome.model.feature_names_in_) == list(FEATURE_COLUMNS)


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
