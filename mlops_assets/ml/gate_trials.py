"""How often the promotion gate promotes a mere refit: the measurement behind its defaults.

A champion and a challenger that differ only by their seed are the same model, so the gate
should almost never promote one over the other. :func:`refit_trials` fits one small model
per seed on the training rows, the seed mattering as the product's does (it draws the
row-budget sample, 90% of each label, and seeds the booster), and scores each on the
held-out month; :func:`false_promotions` puts every ordered pair of different seeds through
:func:`~mlops_assets.ml.promotion.champion_gate`. ``benchmarks/bench_gate.py`` reports the
rates on three windows of 2013; ``mlops_assets_tests/ml/test_gate.py`` checks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.evaluation import classification_metrics
from mlops_assets.ml.promotion import (
    DEPARTURE_COLUMN,
    BootstrapAucs,
    GateSettings,
    bootstrap_aucs,
    champion_gate,
    departure_days,
)
from mlops_assets.ml.training import TrainingSettings, stratified_sample, train_classifier

SMALL = TrainingSettings(max_iter=50)
"""The refitted model: the product's booster with 50 trees (the rate is about the gate)."""
SAMPLE_FRACTION = 0.9
"""The share of each label's training rows a seed draws, as a row budget does."""
THRESHOLD = 0.35
"""The decision threshold of the metrics the gate reads besides the AUC (log loss, Brier
score and ROC AUC do not depend on it)."""


@dataclass(frozen=True)
class Refits:
    """The held-out month, and each seed's probabilities and metrics on it (seed order)."""

    y: np.ndarray
    days: np.ndarray
    probabilities: list[np.ndarray]
    metrics: list[dict[str, float]]


@dataclass(frozen=True)
class FalsePromotions:
    """Of the ordered pairs of different seeds, how many the gate promoted.

    ``point_rule`` counts the pairs whose point estimate alone reached the minimum effect
    given to :func:`false_promotions` (the rule the gate replaced).
    """

    pairs: int
    promoted: int
    point_rule: int
    scored: BootstrapAucs

    @property
    def rate(self) -> float:
        """The share of pairs the gate promoted."""
        return self.promoted / self.pairs

    @property
    def point_rule_rate(self) -> float:
        """The share of pairs the point-estimate rule would have promoted."""
        return self.point_rule / self.pairs


def fit_refit(train: pd.DataFrame, seed: int, settings: TrainingSettings = SMALL) -> Pipeline:
    """The small model on the seed's row sample, with the seed's booster."""
    sample = stratified_sample(train, SAMPLE_FRACTION, seed)
    return train_classifier(sample, replace(settings, random_seed=seed))


def refit_trials(train: pd.DataFrame, holdout: pd.DataFrame, seeds: Sequence[int]) -> Refits:
    """One model per seed fitted on ``train`` and scored on ``holdout``.

    Each fit uses one thread: the same models whatever the machine, and no oversubscription
    when other processes hold the cores.
    """
    rows = holdout[list(FEATURE_COLUMNS)]
    y = holdout[TARGET].to_numpy()
    with threadpool_limits(limits=1, user_api="openmp"):
        probabilities = [fit_refit(train, seed).predict_proba(rows)[:, 1] for seed in seeds]
    return Refits(
        y=y,
        days=departure_days(holdout[DEPARTURE_COLUMN]),
        probabilities=probabilities,
        metrics=[classification_metrics(y, p, THRESHOLD).as_dict() for p in probabilities],
    )


def false_promotions(
    refits: Refits,
    settings: GateSettings | None = None,
    *,
    point_min_effect: float = 0.002,
    scored: BootstrapAucs | None = None,
) -> FalsePromotions:
    """Every ordered pair of different seeds through the gate, on one shared bootstrap.

    The gate's defaults unless ``settings``. ``scored`` is the refits' bootstrap (made with
    seed 42 when None): pass the one an earlier call returned to compare other settings on
    the same draws without drawing them again (2 s for 41 models on a month).
    """
    settings = settings or GateSettings()
    if scored is None:
        scored = bootstrap_aucs(refits.y, refits.probabilities, refits.days, seed=42)
    seeds = range(len(refits.probabilities))
    pairs = [(champion, other) for champion in seeds for other in seeds if other != champion]
    promoted = point_rule = 0
    for champion, challenger in pairs:
        comparison = scored.compare(challenger, champion)
        decision = champion_gate(
            refits.metrics[challenger], comparison, refits.metrics[champion], settings
        )
        promoted += decision.promote
        point_rule += comparison.delta >= point_min_effect
    return FalsePromotions(
        pairs=len(pairs),
        promoted=promoted,
        point_rule=point_rule,
        scored=scored,
    )
