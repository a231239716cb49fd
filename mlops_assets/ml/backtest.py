"""Rolling-origin backtest: the model's recipe replayed on each of the last months.

For each of the last ``k`` months, the recipe (the chosen configuration, fitted as the
pipeline fits it) is trained on every month before it and scored on it. The newest month's
fold is the held-out evaluation itself; the others say whether that figure is typical. The
summary is the mean and the sample standard deviation of each metric over the folds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.evaluation import classification_metrics

BACKTEST_METRICS: tuple[str, ...] = (
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier_score",
    "calibration_error",
)


class Probabilistic(Protocol):
    """A fitted classifier: rows in, one column of probability per class out."""

    def predict_proba(self, rows: pd.DataFrame) -> Any:  # noqa: D102
        ...


@dataclass(frozen=True)
class Fold:
    """One backtest month: what it was trained on and its scores."""

    month: str
    train_months: tuple[str, ...]
    rows: int
    metrics: Mapping[str, float]

    def as_row(self) -> dict[str, float | int | str]:
        """The fold as one row of the backtest table."""
        return {
            "month": self.month,
            "trained_on": f"{self.train_months[0]}..{self.train_months[-1]}",
            "rows": self.rows,
            **{name: self.metrics[name] for name in BACKTEST_METRICS},
        }


def backtest_months(months: Sequence[str], folds: int) -> list[str]:
    """The last ``folds`` months with at least two months before them, oldest first.

    Two: one to fit on and one to validate on, as the pipeline trains.
    """
    ordered = sorted(months)
    return ordered[2:][-folds:] if folds > 0 else []


def score_fold(
    model: Probabilistic, month: str, rows: pd.DataFrame, train_months: Sequence[str]
) -> Fold:
    """Score a fitted model on one month's rows."""
    proba = model.predict_proba(rows[list(FEATURE_COLUMNS)])[:, 1]
    y_true = rows[TARGET].to_numpy()
    metrics = classification_metrics(y_true, np.asarray(proba), threshold=0.5).as_dict()
    return Fold(
        month=month,
        train_months=tuple(sorted(train_months)),
        rows=len(rows),
        metrics={name: metrics[name] for name in BACKTEST_METRICS},
    )


def rolling_backtest(
    by_month: Mapping[str, pd.DataFrame],
    months: Sequence[str],
    fit: Callable[[Mapping[str, pd.DataFrame]], Probabilistic],
) -> list[Fold]:
    """Fit on the months before each of ``months`` and score that month.

    Args:
        by_month: Feature rows by month (every month a fold trains on or scores).
        months: The fold months (:func:`backtest_months`).
        fit: The recipe: training months' rows -> a fitted model with ``predict_proba``.
    """
    folds = []
    for month in months:
        before = {m: rows for m, rows in by_month.items() if m < month}
        folds.append(score_fold(fit(before), month, by_month[month], list(before)))
    return folds


def summarize(folds: Sequence[Mapping[str, float | int | str]]) -> dict[str, float]:
    """``<metric>_mean`` and ``<metric>_sd`` over the folds' rows (sd 0 with one fold).

    Args:
        folds: Rows as :meth:`Fold.as_row` writes them (one per month).

    Raises:
        ValueError: With no fold.
    """
    if not folds:
        raise ValueError("no backtest fold to summarize")
    out: dict[str, float] = {}
    for name in BACKTEST_METRICS:
        values = [float(fold[name]) for fold in folds]
        out[f"{name}_mean"] = statistics.fmean(values)
        out[f"{name}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out
