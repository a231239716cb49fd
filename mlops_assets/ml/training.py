"""Temporal split and training of the flight-delay classifier."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from mlops_assets.ml.columns import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET


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


def concat_months(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Months' rows in one frame, with the columns every month has; categoricals stay so.

    ``pd.concat`` turns categoricals whose categories differ (a destination served in one
    month only) into Python objects, five times the memory; their categories are united
    first. A column only some months carry (the validation month's departure times, see
    :func:`read_training_months`) is left out rather than filled with missing values.
    """
    if not frames:
        raise ValueError("no month to concatenate")
    shared = [c for c in frames[0].columns if all(c in frame.columns for frame in frames)]
    frames = [frame if frame.shape[1] == len(shared) else frame[shared] for frame in frames]
    first = frames[0]
    categorical = [c for c in first.columns if isinstance(first[c].dtype, pd.CategoricalDtype)]
    if categorical:
        united = {
            column: pd.CategoricalDtype(
                sorted(set().union(*(frame[column].cat.categories for frame in frames)))
            )
            for column in categorical
        }
        frames = [frame.astype(united) for frame in frames]
    return pd.concat(frames, ignore_index=True)


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
        train=concat_months([features_by_month[m] for m in months[:-1]]),
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


TRAINING_COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS, TARGET)
"""What training reads of a feature partition: the model inputs and the label, nothing else."""

AVERAGED_FEATURES: tuple[str, ...] = (
    "origin_recent_dep_delay",
    "origin_recent_delayed_share",
    "dest_recent_dep_delay",
    "carrier_origin_recent_dep_delay",
    "dest_recent_arr_delay",
    "dest_recent_arr_gain",
    "flight_hist_arr_delay",
    "flight_hist_delayed_share",
    "route_hour_hist_arr_delay",
    "route_hour_hist_delayed_share",
)
FLOAT32_FEATURES: tuple[str, ...] = tuple(c for c in NUMERIC_FEATURES if c not in AVERAGED_FEATURES)
"""Numeric features that float32 holds exactly: counts, minutes, and the weather readings
(read as float32 from the feed). The averages stay float64: float32 would round them, and a
value rounded in training but not when served can fall on the other side of a split."""


def compact_features(frame: pd.DataFrame, keep: Sequence[str] = ()) -> pd.DataFrame:
    """The training columns of ``frame`` in compact dtypes.

    Categoricals become ``category`` (an integer code per row instead of a Python string),
    the numeric features float32 holds exactly (``FLOAT32_FEATURES``) ``float32``, the label
    ``int8``: about 150 bytes a row instead of about 600.

    Args:
        frame: Feature rows.
        keep: Further columns kept as they are, after the training columns: keys such as the
            validation month's departure times, never model inputs.

    Raises:
        KeyError: Naming the training (or ``keep``) columns ``frame`` lacks.
    """
    wanted = [*TRAINING_COLUMNS, *keep]
    missing = [column for column in wanted if column not in frame.columns]
    if missing:
        raise KeyError(f"feature rows lack the training column(s) {missing}")
    return frame[wanted].astype(
        {
            **dict.fromkeys(CATEGORICAL_FEATURES, "category"),
            **dict.fromkeys(FLOAT32_FEATURES, "float32"),
            **dict.fromkeys(AVERAGED_FEATURES, "float64"),
            TARGET: "int8",
        }
    )


def serving_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Feature rows in the dtypes the served model's signature declares (string, double)."""
    return frame[list(FEATURE_COLUMNS)].astype(
        {
            **dict.fromkeys(CATEGORICAL_FEATURES, "object"),
            **dict.fromkeys(NUMERIC_FEATURES, "float64"),
        }
    )


@dataclass(frozen=True)
class RowSample:
    """How many training rows there were, how many were kept, and why.

    Attributes:
        budget: The configured row budget.
        available: Rows of the training months.
        kept: Rows kept for training.
        fraction: The share kept of every (month, label) stratum (1.0: no subsample).
        by_month: Month -> (available, kept).
    """

    budget: int
    available: int
    kept: int
    fraction: float
    by_month: Mapping[str, tuple[int, int]]

    @property
    def subsampled(self) -> bool:
        """Whether rows were left out to stay within the budget."""
        return self.kept < self.available


def stratified_sample(
    frame: pd.DataFrame, fraction: float, seed: int | Sequence[int]
) -> pd.DataFrame:
    """The same ``fraction`` of each label's rows of ``frame``, drawn with ``seed``, in order.

    Each label keeps ``floor(fraction * its rows)`` rows, so the delayed share is kept to
    within a row and a budget is never exceeded; the rows keep their original order.

    Raises:
        ValueError: When ``fraction`` is not in (0, 1].
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"sample fraction {fraction!r} is not in (0, 1]")
    if fraction == 1:
        return frame
    rng = np.random.default_rng(seed)
    labels = frame[TARGET].to_numpy()
    keep = np.zeros(len(frame), dtype=bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        chosen = rng.choice(rows, size=math.floor(fraction * len(rows)), replace=False)
        keep[chosen] = True
    return frame[keep].reset_index(drop=True)


def read_training_months(
    months: Sequence[str],
    count_rows: Callable[[str], int],
    read_month: Callable[[str], pd.DataFrame],
    budget: int,
    seed: int,
    validation_columns: Sequence[str] = (),
) -> tuple[dict[str, pd.DataFrame], RowSample]:
    """Read the training months one at a time, compact, subsampled to the row budget.

    The months' row counts come first (from the files' metadata), so the share to keep is
    known before any month is read; then each month is read, compacted and sampled before
    the next, and memory holds at most one whole month besides the kept rows. The sample
    is stratified by month and label: every (month, label) stratum keeps the same share.

    Args:
        months: The training months (the held-out month excluded).
        count_rows: A month's number of feature rows, without reading them.
        read_month: A month's feature rows (at least ``TRAINING_COLUMNS``).
        budget: Rows kept at most.
        seed: Seed of the sample; each month draws with ``(seed, YYYYMM)``, so a month's
            sample does not depend on which other months are in the window.
        validation_columns: Columns besides the training ones kept for the last month only,
            the validation month the candidates are compared on (its departure times: the
            comparison resamples its days); ``read_month`` returns them for that month.

    Raises:
        ValueError: When ``budget`` is not positive.
    """
    if budget < 1:
        raise ValueError(f"row budget {budget!r} must be at least 1")
    counts = {month: count_rows(month) for month in months}
    available = sum(counts.values())
    fraction = min(1.0, budget / available) if available else 1.0
    kept: dict[str, pd.DataFrame] = {}
    for month in sorted(months):
        keep = validation_columns if month == max(months) else ()
        rows = compact_features(read_month(month), keep)
        kept[month] = stratified_sample(rows, fraction, (seed, int(month.replace("-", ""))))
    sample = RowSample(
        budget=budget,
        available=available,
        kept=sum(len(rows) for rows in kept.values()),
        fraction=fraction,
        by_month={month: (counts[month], len(kept[month])) for month in sorted(months)},
    )
    return kept, sample


def train_classifier(train: pd.DataFrame, settings: TrainingSettings) -> Pipeline:
    """Fit the classifier on the training rows' feature columns and target."""
    model = build_classifier(settings)
    model.fit(train[list(FEATURE_COLUMNS)], train[TARGET])
    return model
