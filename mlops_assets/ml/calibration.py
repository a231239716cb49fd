"""Calibrated probabilities and the operating threshold, both learned on the validation month.

The chosen candidate is fitted on the training months but the last; the last training month
(the validation month) then serves three purposes, none of which touches the held-out month:
the candidates are compared on it, a sigmoid (Platt) map from the booster's scores to
probabilities is fitted on it, and the operating threshold is chosen on its calibrated
probabilities. A sigmoid map is monotone: it changes log loss, Brier score and calibration
error, never the ranking (ROC AUC).

The threshold rule: the probability that maximises F1 on the validation month (a flight is
flagged late at that probability or above); among equal F1 the lowest such probability.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import precision_recall_curve
from sklearn.pipeline import Pipeline

from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET

CALIBRATION_BINS = 10
THRESHOLD_RULE = "maximum F1 on the validation month's calibrated probabilities"


@dataclass(frozen=True)
class Calibration:
    """How the model's probabilities were calibrated and its threshold chosen.

    Attributes:
        month: The validation month the map and the threshold were learned on.
        threshold: The operating threshold (:data:`THRESHOLD_RULE`).
        validation_f1: F1 at that threshold on the validation month.
        error_before: Expected calibration error on the validation month before the map.
        error_after: The same after it (in-sample: the held-out month tells the truth).
    """

    month: str
    threshold: float
    validation_f1: float
    error_before: float
    error_after: float

    def as_dict(self) -> dict[str, float | str]:
        """A flat mapping for MLflow and Dagster metadata."""
        return asdict(self)


def expected_calibration_error(
    y_true: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Expected calibration error: mean |observed share - mean probability| over equal-width bins.

    Each bin's gap is weighted by its share of the rows.

    Raises:
        ValueError: On empty input or mismatched lengths.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(proba, dtype=float)
    if len(y) == 0 or len(y) != len(p):
        raise ValueError(f"{len(y)} labels and {len(p)} probabilities: need as many, not none")
    which = np.minimum((p * bins).astype(int), bins - 1)
    rows = np.bincount(which, minlength=bins)
    gap = np.abs(
        np.bincount(which, weights=y, minlength=bins)
        - np.bincount(which, weights=p, minlength=bins)
    )
    return float(gap.sum() / rows.sum())


def f1_threshold(y_true: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """The probability that maximises F1 when flights at or above it are flagged, and that F1.

    Raises:
        ValueError: When the labels hold no delayed flight.
    """
    y = np.asarray(y_true)
    if not y.any():
        raise ValueError("the validation labels hold no delayed flight: F1 is undefined")
    precision, recall, thresholds = precision_recall_curve(y, proba)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
    best = int(np.argmax(f1[:-1]))  # the last point (recall 0) has no threshold
    return float(thresholds[best]), float(f1[best])


def calibrate(
    model: Pipeline, validation: pd.DataFrame, month: str
) -> tuple[Pipeline, Calibration]:
    """``model`` with its classifier's probabilities mapped by a sigmoid fitted on ``validation``.

    The returned pipeline keeps the same encoder (``model[:-1]``) and wraps the fitted
    classifier, frozen, in scikit-learn's ``CalibratedClassifierCV``: it loads wherever
    scikit-learn does.

    Args:
        model: A fitted pipeline whose last step is the classifier.
        validation: The validation month's rows (feature columns and the target).
        month: That month, for the record.
    """
    y = validation[TARGET].to_numpy()
    encoded = model[:-1].transform(validation[list(FEATURE_COLUMNS)])
    raw = model[-1].predict_proba(encoded)[:, 1]
    calibrated = CalibratedClassifierCV(FrozenEstimator(model[-1]), method="sigmoid")
    calibrated.fit(encoded, y)
    proba = calibrated.predict_proba(encoded)[:, 1]
    threshold, f1 = f1_threshold(y, proba)
    record = Calibration(
        month=month,
        threshold=threshold,
        validation_f1=f1,
        error_before=expected_calibration_error(y, raw),
        error_after=expected_calibration_error(y, proba),
    )
    return Pipeline([*model.steps[:-1], (model.steps[-1][0], calibrated)]), record
