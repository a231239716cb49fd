"""The quality gate that decides whether a new model version becomes the champion.

With no champion, a version must reach an absolute ROC AUC floor. Against a champion, both
models are scored on the same held-out rows and compared by a paired bootstrap of the AUC
difference that resamples whole days (a block bootstrap): flights of one day share its
weather and its airports' shocks, so resampling rows one by one makes the interval too
narrow. The challenger is promoted when the interval's lower bound is above
``min_lower_bound`` (+0.001 by default: measurably better by a minimum effect, not merely
better on the point estimate; with 0, refits of the same model under another seed were
promoted in up to 9.4% of trials on 2013 windows, with +0.001 in at most 4.3%), it reaches
the floor, and its calibration (log loss, Brier score) is not worse
beyond a tolerance.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

# numpy and pandas are imported by the functions that compute: the code location loads the
# dataclasses (through mlops_assets.tracking.records) and should not pay for them.
if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DEPARTURE_COLUMN = "sched_dep_utc"
"""The feature table's key a row's day is read from: the scheduled departure, naive UTC."""
LOCAL_TIME_ZONE = "America/New_York"
"""The airports' time zone: a day is a local calendar day of departures."""

_MATRIX_BLOCKS = 200
"""Up to this many blocks, resampled AUCs come from a block-by-block matrix of ranked pairs
(a month's 31 days cost milliseconds); beyond, from per-row weights (rows as blocks)."""
_CHUNK = 100
"""Resamples drawn at once: the per-row weights of a chunk are ``_CHUNK`` x rows floats."""


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and why, in words an operator can read."""

    promote: bool
    reason: str


@dataclass(frozen=True)
class GateSettings:
    """The thresholds of the gate (documented defaults; see docs/model-lifecycle.md)."""

    min_roc_auc: float = 0.70
    min_lower_bound: float = 0.001
    log_loss_tolerance: float = 0.01
    brier_tolerance: float = 0.005


@dataclass(frozen=True)
class AucComparison:
    """A paired bootstrap of ROC AUC(challenger) - ROC AUC(champion) on the same rows.

    Attributes:
        blocks: The days resampled (the bootstrap's blocks); 0 in records written before
            the block bootstrap, whose resamples drew rows.
    """

    challenger_auc: float
    champion_auc: float
    delta: float
    low: float
    high: float
    confidence: float
    resamples: int
    blocks: int = 0

    def describe(self) -> str:
        """The difference and its interval, in words (``+0.0040, 95% interval [...]...``)."""
        drawn = f"{self.blocks} days resampled" if self.blocks else "rows resampled"
        return (
            f"{self.delta:+.4f}, {self.confidence:.0%} interval [{self.low:+.4f}, "
            f"{self.high:+.4f}] ({self.resamples} resamples, {drawn})"
        )


def departure_days(sched_dep_utc: pd.Series) -> np.ndarray:
    """The local (New York) calendar day of each scheduled departure: the bootstrap's blocks.

    Args:
        sched_dep_utc: Scheduled departures, naive UTC as the feature table keeps them (or
            time-zone aware).

    Returns:
        One ``datetime64[D]`` day per row, in the rows' order.

    Raises:
        ValueError: When the values are not times, or a row has none.
    """
    import pandas as pd

    times = pd.Series(sched_dep_utc)
    if not pd.api.types.is_datetime64_any_dtype(times):
        raise ValueError(f"scheduled departures must be times, got dtype {times.dtype}")
    missing = int(times.isna().sum())
    if missing:
        raise ValueError(f"{missing} of {len(times)} rows have no scheduled departure")
    if times.dt.tz is None:
        times = times.dt.tz_localize("UTC")
    local = times.dt.tz_convert(LOCAL_TIME_ZONE).dt.tz_localize(None)
    return local.to_numpy().astype("datetime64[D]")


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
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(wins / (pos.sum(axis=1) * neg.sum(axis=1)))


def _ranked_pairs(
    scores: np.ndarray, positive: np.ndarray, codes: np.ndarray, blocks: int
) -> np.ndarray:
    """Pairs ranked right, block by block (a blocks x blocks matrix).

    ``[a, b]`` counts the (positive row of block ``a``, negative row of block ``b``) pairs
    with the positive scored higher, ties one half. A resample that draws block ``a``
    ``c[a]`` times weights each of those pairs ``c[a] * c[b]``, so its AUC is
    ``c @ pairs @ c`` over its positive and negative counts.
    """
    import numpy as np

    is_positive = positive == 1.0
    positive_scores, positive_codes = scores[is_positive], codes[is_positive]
    negative_scores, negative_codes = scores[~is_positive], codes[~is_positive]
    order = np.lexsort((negative_scores, negative_codes))
    negative_scores, negative_codes = negative_scores[order], negative_codes[order]
    bounds = np.searchsorted(negative_codes, np.arange(blocks + 1))
    pairs = np.empty((blocks, blocks))
    for block in range(blocks):
        negatives = negative_scores[bounds[block] : bounds[block + 1]]
        below = np.searchsorted(negatives, positive_scores, side="left")
        tied = np.searchsorted(negatives, positive_scores, side="right") - below
        pairs[:, block] = np.bincount(positive_codes, weights=below + 0.5 * tied, minlength=blocks)
    return pairs


def _draws(blocks: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of resamples: how many times each block is drawn, ``blocks`` draws each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        draws = rng.integers(0, blocks, size=(size, blocks))
        offsets = (np.arange(size) * blocks)[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=size * blocks)
        yield counts.reshape(size, blocks).astype(float)


def _resampled_aucs(
    scores: np.ndarray,
    positive: np.ndarray,
    codes: np.ndarray,
    blocks: int,
    resamples: int,
    seed: int,
) -> np.ndarray:
    """ROC AUC of ``scores`` on each of the seeded block resamples (the same for any scores)."""
    import numpy as np

    if blocks <= _MATRIX_BLOCKS:
        counts = np.concatenate(list(_draws(blocks, resamples, seed)))
        pairs = _ranked_pairs(scores, positive, codes, blocks)
        positives = np.bincount(codes, weights=positive, minlength=blocks)
        negatives = np.bincount(codes, weights=1.0 - positive, minlength=blocks)
        wins = ((counts @ pairs) * counts).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(wins / ((counts @ positives) * (counts @ negatives)))
    return np.concatenate(
        [
            _weighted_aucs(scores, positive, counts[:, codes])
            for counts in _draws(blocks, resamples, seed)
        ]
    )


@dataclass(frozen=True)
class BootstrapAucs:
    """Several models' ROC AUC on the same rows, and on the same block resamples of them.

    Attributes:
        aucs: Each model's ROC AUC on every row.
        resampled: Each model's ROC AUC on each resample (models x resamples); a row of
            resamples is the same draw for every model, so differences are paired.
        blocks: How many blocks (days) each resample draws.
    """

    aucs: np.ndarray
    resampled: np.ndarray
    blocks: int

    def compare(self, challenger: int, champion: int, confidence: float = 0.95) -> AucComparison:
        """The paired percentile interval of AUC(``challenger``) - AUC(``champion``).

        Args:
            challenger: The challenger's index among the models.
            champion: The champion's index.
            confidence: Two-sided confidence of the interval.

        Raises:
            ValueError: On a confidence outside (0, 1).
        """
        import numpy as np

        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must be within (0, 1), got {confidence}")
        spread = self.resampled[challenger] - self.resampled[champion]
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(spread, [tail, 1.0 - tail])
        return AucComparison(
            challenger_auc=float(self.aucs[challenger]),
            champion_auc=float(self.aucs[champion]),
            delta=float(self.aucs[challenger] - self.aucs[champion]),
            low=float(low),
            high=float(high),
            confidence=confidence,
            resamples=self.resampled.shape[1],
            blocks=self.blocks,
        )


def bootstrap_aucs(
    y_true: np.ndarray,
    scores: Sequence[np.ndarray],
    blocks: np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> BootstrapAucs:
    """Score several models' ROC AUC on the same seeded block bootstrap of the same rows.

    Each resample draws as many blocks as there are, with replacement, and weights every row
    by how many times its block was drawn; every model is scored on that same draw.

    Args:
        y_true: 0/1 labels of the rows.
        scores: Each model's probabilities for those rows.
        blocks: Each row's block: its day (:func:`departure_days`), or any label; rows
            sharing a label are drawn together (distinct labels per row resample rows).
        resamples: Bootstrap resamples (at least 1,000).
        seed: Seed of the resampling.

    Returns:
        The models' AUCs and their resampled AUCs.

    Raises:
        ValueError: On mismatched lengths, no model, a single class, fewer than two blocks or
            1,000 resamples, or a resample that holds a single class (blocks too few).
    """
    import numpy as np

    lengths = {len(y_true), len(blocks), *(len(s) for s in scores)}
    if len(lengths) > 1:
        raise ValueError(
            f"{len(y_true)} labels, {len(blocks)} blocks and predictions of "
            f"{[len(s) for s in scores]} rows: the models must score the same rows"
        )
    if not scores:
        raise ValueError("no model to score")
    if len(np.unique(y_true)) < 2:
        raise ValueError("held-out labels contain a single class; AUC is undefined")
    if resamples < 1000:
        raise ValueError(f"resamples must be at least 1,000, got {resamples}")
    labels, codes = np.unique(np.asarray(blocks), return_inverse=True)
    if len(labels) < 2:
        raise ValueError(f"the rows fall in {len(labels)} block: a block bootstrap needs two")
    positive = np.asarray(y_true, dtype=float)
    codes = codes.ravel()
    ones = np.ones((1, len(positive)))
    columns = [np.asarray(s, dtype=float) for s in scores]
    resampled = np.stack(
        [_resampled_aucs(s, positive, codes, len(labels), resamples, seed) for s in columns]
    )
    if not np.isfinite(resampled).all():
        raise ValueError(
            f"a resample of the {len(labels)} blocks holds a single class: too few blocks"
        )
    return BootstrapAucs(
        aucs=np.array([_weighted_aucs(s, positive, ones)[0] for s in columns]),
        resampled=resampled,
        blocks=len(labels),
    )


def paired_bootstrap_auc(
    y_true: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    blocks: np.ndarray,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AucComparison:
    """Compare two models' ROC AUC on the same rows by a paired, seeded block bootstrap.

    Each resample draws the blocks (days) with replacement once and scores both models on
    that same draw, so the interval is of the difference, not of two independent AUCs.

    Args:
        y_true: 0/1 labels of the held-out rows.
        challenger: The challenger's probabilities for those rows.
        champion: The champion's probabilities for the same rows.
        blocks: Each row's day (:func:`departure_days`); see :func:`bootstrap_aucs`.
        resamples: Bootstrap resamples (at least 1,000).
        confidence: Two-sided confidence of the interval.
        seed: Seed of the resampling.

    Returns:
        Both AUCs, their difference, its percentile interval and the number of blocks.

    Raises:
        ValueError: As :func:`bootstrap_aucs`, or on a confidence outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    scored = bootstrap_aucs(y_true, [challenger, champion], blocks, resamples=resamples, seed=seed)
    return scored.compare(0, 1, confidence)


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
    better = comparison.low > settings.min_lower_bound
    checks = [
        (floor.promote, floor.reason),
        (
            better,
            f"AUC difference {comparison.describe()}: lower bound "
            f"{'above' if better else 'not above'} {settings.min_lower_bound:+.4f} "
            f"({'measurably better' if better else 'not measurably better'})",
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
