"""Temporal split and training of the flight-delay classifier."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from mlops_assets.ml.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET


@dataclass(frozen=True)
class TrainingSettings:
    """Hyper-parameters of the HistGradientBoosting classifier (see scikit-learn's docs)."""

    learning_rate: float = 0.1
    max_iter: int = 300
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    l2_regularization: float = 0.0
    random_seed: int = 42


@dataclass(frozen=True)
class TemporalSplit:
    """Training rows (every month before the newest) and the held-out newest month."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    train_months: list[str]
    holdout_month: str


def temporal_split(features_by_month: Mapping[str, pd.DataFrame]) -> TemporalSplit:
    """Hold out the newest month; train on every month before it.

    Args:
        features_by_month: Feature rows by ``YYYY-MM`` month (the feature partitions).

    Raises:
        ValueError: With fewer than two months, or when either side has a single class.
    """
    months = sorted(features_by_month)
    if len(months) < 2:
        raise ValueError(f"temporal split needs at least two months of features, got {months}")
    split = TemporalSplit(
        train=pd.concat([features_by_month[m] for m in months[:-1]], ignore_index=True),
        holdout=features_by_month[months[-1]],
        train_months=months[:-1],
        holdout_month=months[-1],
    )
    sides = (
        ("training", split.train, ", ".join(split.train_months)),
        ("held-out", split.holdout, split.holdout_month),
    )
    for name, part, which in sides:
        if part[TARGET].nunique() < 2:
            raise ValueError(f"the {name} rows ({which}) contain a single class of {TARGET!r}")
    return split


def build_classifier(settings: TrainingSettings) -> Pipeline:
    """An unfitted pipeline: ordinal-encode categoricals, then HistGradientBoosting.

    Unknown or missing categories become -1, which the booster treats as missing, so a new
    carrier or destination at serving time does not fail the prediction.
    """
    encoder = ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                list(CATEGORICAL_FEATURES),
            ),
            ("numeric", "passthrough", list(NUMERIC_FEATURES)),
        ],
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        learning_rate=settings.learning_rate,
        max_iter=settings.max_iter,
        max_leaf_nodes=settings.max_leaf_nodes,
        min_samples_leaf=settings.min_samples_leaf,
        l2_regularization=settings.l2_regularization,
        early_stopping=False,  # a random validation split would break the temporal design
        categorical_features=[True] * len(CATEGORICAL_FEATURES) + [False] * len(NUMERIC_FEATURES),
        random_state=settings.random_seed,
    )
    return Pipeline([("encode", encoder), ("classify", classifier)])


def train_classifier(train: pd.DataFrame, settings: TrainingSettings) -> Pipeline:
    """Fit the classifier on the training rows' feature columns and target."""
    model = build_classifier(settings)
    model.fit(train[list(FEATURE_COLUMNS)], train[TARGET])
    return model
