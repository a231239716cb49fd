"""Held-out metrics and diagnostic plots of a probabilistic classifier."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline

from mlops_assets.ml.calibration import CALIBRATION_BINS, expected_calibration_error


@dataclass(frozen=True)
class ClassificationMetrics:
    """Threshold-free and threshold metrics on held-out rows."""

    roc_auc: float
    pr_auc: float
    log_loss: float
    brier_score: float
    calibration_error: float
    precision: float
    recall: float
    f1: float
    threshold: float
    positive_rate: float
    rows: int

    def as_dict(self) -> dict[str, float]:
        """The metrics as a flat mapping (for MLflow and Dagster metadata)."""
        return {key: float(value) for key, value in asdict(self).items()}


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, threshold: float
) -> ClassificationMetrics:
    """Compute ROC AUC, PR AUC, log loss, Brier, calibration error and precision/recall/F1.

    The calibration error is :func:`mlops_assets.ml.calibration.expected_calibration_error`;
    precision, recall and F1 are at ``threshold``.

    Raises:
        ValueError: When ``y_true`` holds a single class or lengths differ.
    """
    if len(y_true) != len(proba):
        raise ValueError(f"{len(y_true)} labels but {len(proba)} predictions")
    if len(np.unique(y_true)) < 2:
        raise ValueError("held-out labels contain a single class; AUC is undefined")
    predicted = (proba >= threshold).astype(int)
    return ClassificationMetrics(
        roc_auc=float(roc_auc_score(y_true, proba)),
        pr_auc=float(average_precision_score(y_true, proba)),
        log_loss=float(log_loss(y_true, proba, labels=[0, 1])),
        brier_score=float(brier_score_loss(y_true, proba)),
        calibration_error=expected_calibration_error(y_true, proba),
        precision=float(precision_score(y_true, predicted, zero_division=0)),
        recall=float(recall_score(y_true, predicted, zero_division=0)),
        f1=float(f1_score(y_true, predicted, zero_division=0)),
        threshold=float(threshold),
        positive_rate=float(np.mean(y_true)),
        rows=len(y_true),
    )


def feature_importance(
    model: BaseEstimator, features: pd.DataFrame, y_true: np.ndarray, *, sample_rows: int, seed: int
) -> pd.Series:
    """Permutation importance (drop in ROC AUC) on a seeded sample of held-out rows, sorted."""
    if len(features) > sample_rows:
        sample = features.sample(n=sample_rows, random_state=seed)
        y_sample = y_true[features.index.get_indexer(sample.index)]
    else:
        sample, y_sample = features, y_true
    estimator, rows, names = model, sample, list(features.columns)
    encoded_names = list(model[:-1].get_feature_names_out()) if isinstance(model, Pipeline) else []
    if isinstance(model, Pipeline) and sorted(encoded_names) == sorted(names):
        # One encoded column per feature: encode once, then permute encoded columns. The
        # same numbers (the encoders map each value on its own), without re-running the
        # pandas encoders per permutation. (A one-hot encoder spreads a feature over several
        # columns, which must move together: then the raw columns are permuted.)
        estimator, rows, names = model[-1], model[:-1].transform(sample), encoded_names
    importances = permuted_auc_drops(estimator, rows, y_sample, n_repeats=3, seed=seed)
    return pd.Series(importances, index=names).sort_values(ascending=False)


PERMUTED_ROWS_PER_CALL = 100_000
"""Rows scored at once when permuting: several columns' permutations share one call."""


def _permutations(n_rows: int, n_repeats: int, seed: int) -> list[np.ndarray]:
    """The row orders scikit-learn's ``permutation_importance`` gives every column.

    It draws one seed, then for each column shuffles one index array in place ``n_repeats``
    times, each shuffle applied to the column as the previous one left it.
    """
    draw = np.random.RandomState(np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1))
    shuffling, order, orders = np.arange(n_rows), np.arange(n_rows), []
    for _ in range(n_repeats):
        draw.shuffle(shuffling)
        order = order[shuffling]
        orders.append(order)
    return orders


def _permuted(
    rows: pd.DataFrame | np.ndarray, column: int, order: np.ndarray
) -> pd.DataFrame | np.ndarray:
    """A copy of ``rows`` whose ``column`` holds its values in ``order``."""
    if isinstance(rows, pd.DataFrame):
        copy = rows.copy()
        name = rows.columns[column]
        copy[name] = rows[name].to_numpy()[order]
        return copy
    permuted = rows.copy()
    permuted[:, column] = rows[order, column]
    return permuted


def permuted_auc_drops(
    estimator: BaseEstimator,
    rows: pd.DataFrame | np.ndarray,
    y_true: np.ndarray,
    *,
    n_repeats: int,
    seed: int,
) -> np.ndarray:
    """Each column's mean drop in ROC AUC when its values are permuted among the rows.

    The numbers of scikit-learn's ``permutation_importance(..., scoring="roc_auc")`` (same
    permutations, same scores), but the permuted copies of several columns are stacked and
    scored in one call: a call's fixed cost (the pipeline's checks, the booster's encoding,
    one OpenMP region per tree) is paid once per :data:`PERMUTED_ROWS_PER_CALL` rows instead
    of once per column and repeat.
    """
    score = getattr(estimator, "decision_function", None)
    if score is None:
        score = lambda x: estimator.predict_proba(x)[:, 1]  # noqa: E731
    n_rows, n_columns = rows.shape
    baseline = roc_auc_score(y_true, score(rows))
    orders = _permutations(n_rows, n_repeats, seed)
    per_call = max(1, PERMUTED_ROWS_PER_CALL // (n_rows * n_repeats))
    drops = np.empty(n_columns)
    for first in range(0, n_columns, per_call):
        columns = range(first, min(first + per_call, n_columns))
        copies = [_permuted(rows, column, order) for column in columns for order in orders]
        stacked = (
            pd.concat(copies, ignore_index=True)
            if isinstance(rows, pd.DataFrame)
            else np.vstack(copies)
        )
        scores = np.asarray(score(stacked)).reshape(len(columns), n_repeats, n_rows)
        for offset, column in enumerate(columns):
            permuted = [roc_auc_score(y_true, scores[offset, k]) for k in range(n_repeats)]
            drops[column] = baseline - float(np.mean(permuted))
    return drops


def _png(figure: object) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(figure)  # type: ignore[arg-type]
    return buffer.getvalue()


def diagnostic_plots(
    y_true: np.ndarray, proba: np.ndarray, threshold: float, importance: pd.Series
) -> dict[str, bytes]:
    """ROC, precision-recall, calibration, confusion-matrix and importance plots as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, bytes] = {}
    fpr, tpr, _ = roc_curve(y_true, proba)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=f"AUC = {roc_auc_score(y_true, proba):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    ax.legend(loc="lower right")
    plots["roc_curve.png"] = _png(fig)

    precision, recall, _ = precision_recall_curve(y_true, proba)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(recall, precision, label=f"AP = {average_precision_score(y_true, proba):.3f}")
    ax.axhline(float(np.mean(y_true)), linestyle="--", color="grey", label="base rate")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve")
    ax.legend(loc="upper right")
    plots["pr_curve.png"] = _png(fig)

    observed, predicted = calibration_curve(
        y_true, proba, n_bins=CALIBRATION_BINS, strategy="uniform"
    )
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(predicted, observed, marker="o")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(
        xlabel="Mean predicted probability",
        ylabel="Observed delayed share",
        title=f"Reliability (ECE {expected_calibration_error(y_true, proba):.3f})",
    )
    plots["calibration_curve.png"] = _png(fig)

    matrix = confusion_matrix(y_true, (proba >= threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(matrix, cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, f"{count:,}", ha="center", va="center")
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["on time", "late"],
        yticklabels=["on time", "late"],
        xlabel="Predicted",
        ylabel="Actual",
        title=f"Confusion matrix (threshold {threshold:.2f})",
    )
    plots["confusion_matrix.png"] = _png(fig)

    top = importance.head(15)[::-1]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.barh(top.index, top.to_numpy())
    ax.set(xlabel="Drop in ROC AUC when permuted", title="Feature importance")
    plots["feature_importance.png"] = _png(fig)
    return plots
