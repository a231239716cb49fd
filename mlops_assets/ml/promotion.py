"""The quality gate that decides whether a new model version becomes the champion.

With no champion, a version must reach an absolute ROC AUC floor. Against a champion, both
models are scored on the same held-out rows and compared by a paired bootstrap of the AUC
difference: the challenger is promoted when it is not worse than the champion beyond a
tolerance (the interval's lower bound), better by at least a minimum effect (the observed
difference), and its calibration (log loss, Brier score) is not worse beyond a tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

# numpy is imported by the functions that compute: the code location loads the dataclasses
# (through mlops_assets.records) and should not pay for numpy.
if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and why, in words an operator can read."""

    promote: bool
    reason: str


@dataclass(frozen=True)
class GateSettings:
    """The thresholds of the gate (documented defaults; see the README)."""

    min_roc_auc: float = 0.70
    tolerance: float = 0.005
    min_effect: float = 0.002
    log_loss_tolerance: float = 0.01
    brier_tolerance: float = 0.005


@dataclass(frozen=True)
class AucComparison:
    """A paired bootstrap of ROC AUC(challenger) - ROC AUC(champion) on the same rows."""

    challenger_auc: float
    champion_auc: float
    delta: float
    low: float
    high: float
    confidence: float
    resamples: int


def absolute_floor_gate(roc_auc: float, min_roc_auc: float) -> GateDecision:
    """Promote when the held-out ROC AUC reaches the configured floor.

    Args:
        roc_auc: The candidate's held-out ROC AUC.
        min_roc_auc: The floor a champion must reach.

    Returns:
        The decision and its reason.

    Raises:
        ValueError: When the AUC is not a number in [0, 1].
    """
    if not 0.0 <= roc_auc <= 1.0:
        raise ValueError(f"held-out ROC AUC must be within [0, 1], got {roc_auc!r}")
    if roc_auc >= min_roc_auc:
        return GateDecision(True, f"held-out ROC AUC {roc_auc:.4f} >= floor {min_roc_auc:.4f}")
    return GateDecision(False, f"held-out ROC AUC {roc_auc:.4f} < floor {min_roc_auc:.4f}")


def _weighted_aucs(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC of ``scores`` under each row of ``weights`` (ties count one half).

    Rows are sorted by score once; equal scores form one group, so each weighting costs a
    few vectorised sums instead of a sort.
    """
    import numpy as np

    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_scores)) + 1))
    w = weights[:, order]
    pos = np.add.reduceat(w * positive[order], starts, axis=1)
    neg = np.add.reduceat(w * (1.0 - positive[order]), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    return np.asarray(wins / (pos.sum(axis=1) * neg.sum(axis=1)))


def paired_bootstrap_auc(
    y_true: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AucComparison:
    """Compare two models' ROC AUC on the same rows by a paired, seeded bootstrap.

    Each resample draws the rows with replacement once and scores both models on that same
    draw, so the interval is of the difference, not of two independent AUCs.

    Args:
        y_true: 0/1 labels of the held-out rows.
        challenger: The challenger's probabilities for those rows.
        champion: The champion's probabilities for the same rows.
        resamples: Bootstrap resamples (at least 1,000).
        confidence: Two-sided confidence of the interval.
        seed: Seed of the resampling.

    Returns:
        Both AUCs, their difference and its percentile interval.

    Raises:
        ValueError: On mismatched lengths, a single class, fewer than 1,000 resamples or a
            confidence outside (0, 1).
    """
    import numpy as np

    if not len(y_true) == len(challenger) == len(champion):
        raise ValueError(
            f"{len(y_true)} labels, {len(challenger)} challenger and {len(champion)} "
            "champion predictions: the models must score the same rows"
        )
    if len(np.unique(y_true)) < 2:
        raise ValueError("held-out labels contain a single class; AUC is undefined")
    if resamples < 1000:
        raise ValueError(f"resamples must be at least 1,000, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    positive = np.asarray(y_true, dtype=float)
    challenger, champion = np.asarray(challenger, float), np.asarray(champion, float)
    ones = np.ones((1, len(positive)))
    point = {
        name: float(_weighted_aucs(scores, positive, ones)[0])
        for name, scores in (("challenger", challenger), ("champion", champion))
    }
    rng = np.random.default_rng(seed)
    rows = len(positive)
    deltas = []
    for start in range(0, resamples, 100):
        size = min(100, resamples - start)
        draws = rng.integers(0, rows, size=(size, rows))
        offsets = (np.arange(size) * rows)[:, None]
        weights = np.bincount((draws + offsets).ravel(), minlength=size * rows)
        weights = weights.reshape(size, rows).astype(float)
        deltas.append(
            _weighted_aucs(challenger, positive, weights)
            - _weighted_aucs(champion, positive, weights)
        )
    spread = np.concatenate(deltas)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(spread, [tail, 1.0 - tail])
    return AucComparison(
        challenger_auc=point["challenger"],
        champion_auc=point["champion"],
        delta=point["challenger"] - point["champion"],
        low=float(low),
        high=float(high),
        confidence=confidence,
        resamples=resamples,
    )


def champion_gate(
    challenger_metrics: Mapping[str, float],
    comparison: AucComparison | None,
    champion_metrics: Mapping[str, float] | None,
    settings: GateSettings,
) -> GateDecision:
    """Decide whether the challenger replaces the champion (or becomes the first one).

    Args:
        challenger_metrics: The challenger's held-out metrics (``roc_auc``, ``log_loss``,
            ``brier_score``).
        comparison: The paired bootstrap against the champion; None when there is none.
        champion_metrics: The champion's metrics on the same rows; None when there is none.
        settings: The thresholds.

    Returns:
        The decision, with every number it rests on in its reason.
    """
    floor = absolute_floor_gate(challenger_metrics["roc_auc"], settings.min_roc_auc)
    if comparison is None or champion_metrics is None:
        return GateDecision(floor.promote, f"no champion yet; {floor.reason}")
    checks = [
        (floor.promote, floor.reason),
        (
            comparison.low > -settings.tolerance,
            f"AUC difference {comparison.delta:+.4f}, {comparison.confidence:.0%} interval "
            f"[{comparison.low:+.4f}, {comparison.high:+.4f}] "
            f"{'above' if comparison.low > -settings.tolerance else 'not above'} "
            f"-{settings.tolerance:.4f} (not worse)",
        ),
        (
            comparison.delta >= settings.min_effect,
            f"difference {comparison.delta:+.4f} "
            f"{'>=' if comparison.delta >= settings.min_effect else '<'} minimum effect "
            f"{settings.min_effect:.4f}",
        ),
    ]
    for metric, tolerance in (
        ("log_loss", settings.log_loss_tolerance),
        ("brier_score", settings.brier_tolerance),
    ):
        change = challenger_metrics[metric] - champion_metrics[metric]
        checks.append(
            (
                change <= tolerance,
                f"{metric} {challenger_metrics[metric]:.4f} vs {champion_metrics[metric]:.4f} "
                f"({change:+.4f}, tolerance {tolerance:.4f})",
            )
        )
    promote = all(passed for passed, _ in checks)
    failed = [reason for passed, reason in checks if not passed]
    verdict = "promoted" if promote else "kept the champion: " + "; ".join(failed)
    detail = "; ".join(reason for _, reason in checks)
    return GateDecision(
        promote,
        f"{verdict} (AUC {comparison.challenger_auc:.4f} vs "
        f"{comparison.champion_auc:.4f}; {detail})",
    )
