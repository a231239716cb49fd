"""The promotion gate on real flights: how often it promotes a mere refit, and a real gain.

Two real months (January and February 2013) train, March is held out. The champion and its
challengers are the same small model (50 trees) fitted with different seeds
(``mlops_assets.ml.gate_trials``). Every ordered pair of 21 seeds is a trial (the champion's
seed is drawn too: against one unlucky champion most refits look better). The gate must
promote fewer than 5% of them. The rate depends on the months; ``benchmarks/bench_gate.py``
measures it on three windows with 41 seeds, and docs/model-lifecycle.md reports it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.ml.columns import DEPARTURE_FEATURES, FEATURE_COLUMNS
from mlops_assets.ml.evaluation import classification_metrics
from mlops_assets.ml.gate_trials import Refits, false_promotions, fit_refit, refit_trials
from mlops_assets.ml.landed import month_features
from mlops_assets.ml.promotion import (
    GateSettings,
    bootstrap_aucs,
    champion_gate,
    paired_bootstrap_auc,
)
from mlops_assets.ml.training import compact_features, concat_months

SEEDS = range(21)


@pytest.fixture(scope="module")
def window(seeded_landing: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """January and February train (compact, as read for training), March is held out."""
    by_month = month_features(seeded_landing, ["2013-01", "2013-02", "2013-03"])
    train = concat_months([compact_features(by_month[m]) for m in ("2013-01", "2013-02")])
    return train, by_month["2013-03"]


@pytest.fixture(scope="module")
def refits(window: tuple[pd.DataFrame, pd.DataFrame]) -> Refits:
    """One model per seed, scored on March."""
    return refit_trials(*window, SEEDS)


def test_a_refit_with_another_seed_is_promoted_in_fewer_than_5_percent_of_trials(
    refits: Refits,
) -> None:
    found = false_promotions(refits, point_min_effect=0.002)
    assert found.scored.blocks == 31  # March's days
    assert found.pairs == len(SEEDS) * (len(SEEDS) - 1)
    assert min(m["roc_auc"] for m in refits.metrics) > GateSettings().min_roc_auc  # not the floor
    print(f"false promotions: gate {found.rate:.1%}, point >= 0.002 {found.point_rule_rate:.1%}")
    assert found.rate < 0.05
    # Positive control: the refits do differ, and the old rule's deciding condition (the
    # point estimate reaching its minimum effect) promotes them far more often.
    assert np.std(found.scored.aucs) > 0.0005
    assert found.point_rule_rate >= 0.05 and found.point_rule_rate > 2 * found.rate
    # The shortcut (every model scored once on the same draws) is the gate's bootstrap.
    direct = paired_bootstrap_auc(
        refits.y, refits.probabilities[1], refits.probabilities[0], refits.days, seed=42
    )
    assert direct == found.scored.compare(1, 0)


def test_resampling_rows_instead_of_days_understates_the_noise(refits: Refits) -> None:
    """Positive control of the defect: flights of a day share its shocks."""
    three = refits.probabilities[:3]
    by_day = bootstrap_aucs(refits.y, three, refits.days, seed=42)
    by_row = bootstrap_aucs(refits.y, three, np.arange(len(refits.y)), seed=42)
    assert by_row.blocks == len(refits.y)
    for challenger, champion in ((1, 0), (2, 0), (2, 1)):
        day, row = by_day.compare(challenger, champion), by_row.compare(challenger, champion)
        assert day.delta == row.delta
        ratio = (row.high - row.low) / (day.high - day.low)
        print(f"seeds {challenger} vs {champion}: row/day interval width {ratio:.2f}")
        assert ratio < 0.9


def test_a_challenger_with_the_departure_features_beats_one_without_them(
    window: tuple[pd.DataFrame, pd.DataFrame], refits: Refits
) -> None:
    train, holdout = window
    blank = dict.fromkeys(DEPARTURE_FEATURES, 0.0)  # constant: nothing to learn from them
    weaker = fit_refit(train.assign(**blank), 0)
    rows = holdout[list(FEATURE_COLUMNS)]
    champion = weaker.predict_proba(rows.assign(**blank))[:, 1]
    challenger = refits.probabilities[0]  # the same seed, with every feature
    comparison = paired_bootstrap_auc(refits.y, challenger, champion, refits.days, seed=42)
    champion_metrics = classification_metrics(refits.y, champion, threshold=0.35).as_dict()
    decision = champion_gate(refits.metrics[0], comparison, champion_metrics, GateSettings())
    assert decision.promote, decision.reason
    assert comparison.low > 0.005
    # And the other way round: the weaker model does not replace the stronger one.
    reverse = champion_gate(
        champion_metrics,
        paired_bootstrap_auc(refits.y, champion, challenger, refits.days),
        refits.metrics[0],
        GateSettings(),
    )
    assert not reverse.promote and "not measurably better" in reverse.reason
