"""The promotion gate on real flights: how often it promotes a mere refit, and a real gain.

Two real months (January and February 2013) train, March is held out. The champion and its
challengers are the same small model (50 trees) fitted with different seeds, the seed
mattering as the product's does: it draws the row-budget sample (90% of each label) and
seeds the booster. Every ordered pair of 41 seeds is a trial (the champion's seed is drawn
too: against one unlucky champion most refits look better). The gate must promote fewer
than 5% of them. The rate depends on the months (other months, measured with this code,
exceed 5% with a bound of 0); docs/model-lifecycle.md reports the rates measured here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlops_assets.landing import layout
from mlops_assets.ml import raw
from mlops_assets.ml.columns import DEPARTURE_FEATURES, FEATURE_COLUMNS, TARGET
from mlops_assets.ml.evaluation import classification_metrics
from mlops_assets.ml.features import build_month_features
from mlops_assets.ml.promotion import (
    DEPARTURE_COLUMN,
    GateSettings,
    bootstrap_aucs,
    champion_gate,
    departure_days,
    paired_bootstrap_auc,
)
from mlops_assets.ml.training import (
    TrainingSettings,
    compact_features,
    concat_months,
    stratified_sample,
    train_classifier,
)

SEEDS = range(41)
SMALL = TrainingSettings(max_iter=50)
SAMPLE_FRACTION = 0.9
OLD_MIN_EFFECT = 0.002
"""The replaced rule's deciding condition: the point estimate of the difference reached this."""


@dataclass(frozen=True)
class Refits:
    """The held-out month, and each seed's probabilities and metrics on it."""

    y: np.ndarray
    days: np.ndarray
    probabilities: list[np.ndarray]
    metrics: list[dict[str, float]]
    train: pd.DataFrame
    holdout: pd.DataFrame


def _fit(train: pd.DataFrame, seed: int) -> Pipeline:
    """The small model on the seed's row sample, with the seed's booster."""
    sample = stratified_sample(train, SAMPLE_FRACTION, seed)
    return train_classifier(sample, replace(SMALL, random_seed=seed))


@pytest.fixture(scope="module")
def refits(seeded_landing: Path) -> Refits:
    """January and February train, March is held out; one model per seed."""

    def read(table: str, month: str, schema: dict[str, str]) -> pd.DataFrame:
        return raw.read_raw_csv(layout.monthly_file(seeded_landing, table, month), schema)

    planes = raw.read_raw_csv(seeded_landing / layout.PLANES_FILE, raw.PLANES_SCHEMA)
    months: dict[str, pd.DataFrame] = {}
    flights = {
        m: read("flights", m, dict(raw.FLIGHTS_SCHEMA)) for m in ("2013-01", "2013-02", "2013-03")
    }
    weather = {m: read("weather", m, dict(raw.WEATHER_SCHEMA)) for m in flights}
    for month, before in (("2013-01", None), ("2013-02", "2013-01"), ("2013-03", "2013-02")):
        months[month], _ = build_month_features(
            month,
            raw.with_context(flights[month], flights[before] if before else None),
            raw.with_context(weather[month], weather[before] if before else None),
            planes,
        )
    train = concat_months([compact_features(months[m]) for m in ("2013-01", "2013-02")])
    holdout = months["2013-03"]
    rows = holdout[list(FEATURE_COLUMNS)]
    y = holdout[TARGET].to_numpy()
    # One thread per fit: the same models whatever the machine, and no oversubscription when
    # other processes hold the cores.
    with threadpool_limits(limits=1, user_api="openmp"):
        probabilities = [_fit(train, seed).predict_proba(rows)[:, 1] for seed in SEEDS]
    return Refits(
        y=y,
        days=departure_days(holdout[DEPARTURE_COLUMN]),
        probabilities=probabilities,
        metrics=[classification_metrics(y, p, threshold=0.35).as_dict() for p in probabilities],
        train=train,
        holdout=holdout,
    )


def test_a_refit_with_another_seed_is_promoted_in_fewer_than_5_percent_of_trials(
    refits: Refits,
) -> None:
    scored = bootstrap_aucs(refits.y, refits.probabilities, refits.days, seed=42)
    assert scored.blocks == 31  # March's days
    settings = GateSettings()
    assert min(m["roc_auc"] for m in refits.metrics) > settings.min_roc_auc  # not the floor
    pairs = [(champion, challenger) for champion in SEEDS for challenger in SEEDS]
    pairs = [(champion, challenger) for champion, challenger in pairs if champion != challenger]
    promoted, point_rule = 0, 0
    for champion, challenger in pairs:
        comparison = scored.compare(challenger, champion)
        decision = champion_gate(
            refits.metrics[challenger], comparison, refits.metrics[champion], settings
        )
        promoted += decision.promote
        point_rule += comparison.delta >= OLD_MIN_EFFECT
    rate, old_rate = promoted / len(pairs), point_rule / len(pairs)
    print(f"false promotions: gate {rate:.1%}, point estimate >= 0.002 {old_rate:.1%}")
    assert rate < 0.05
    # Positive control: the refits do differ, and the old rule's deciding condition (the
    # point estimate reaching its minimum effect) promotes them far more often.
    assert np.std(scored.aucs) > 0.0005
    assert old_rate >= 0.05 and old_rate > 2 * rate
    # The shortcut above (every model scored once on the same draws) is the gate's bootstrap.
    direct = paired_bootstrap_auc(
        refits.y, refits.probabilities[1], refits.probabilities[0], refits.days, seed=42
    )
    assert direct == scored.compare(1, 0)


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
    refits: Refits,
) -> None:
    blank = dict.fromkeys(DEPARTURE_FEATURES, 0.0)  # constant: nothing to learn from them
    with threadpool_limits(limits=1, user_api="openmp"):
        weaker = _fit(refits.train.assign(**blank), 0)
    rows = refits.holdout[list(FEATURE_COLUMNS)]
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
