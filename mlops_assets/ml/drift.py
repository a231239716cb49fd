"""Drift: how far a month's features and predictions moved from the model's training window.

The measure is the population stability index (PSI) of each feature, and of the model's
predicted delay probability, between the **reference** (the rows a model was trained on) and
a month::

    PSI = sum over bins of (actual_share - expected_share) * ln(actual_share / expected_share)

- numeric features are cut into the reference's deciles (interior edges at its 10%, ..., 90%
  quantiles, outer edges -inf and +inf; tied quantiles merge, so a mostly-constant feature
  gets fewer bins), each bin closed on the right;
- categorical features get one bin per category seen in the reference; categories the
  reference never saw are pooled into one "unseen" bin;
- a missing value (NaN, None) is a bin of its own in both kinds: a weather feed that stops
  reporting is drift too;
- a bin that is empty on either side counts as ``EPSILON`` (1e-4) instead of 0, so the
  logarithm stays finite: an empty bin the reference filled at 10% adds about 0.69.

The usual reading, from credit scoring where PSI comes from: below 0.1 stable, 0.1 to 0.25 a
moderate shift worth a look, above 0.25 a major shift. Under no drift at all PSI is not
exactly 0, from sampling alone: about ``(bins - 1) * (1/n_reference + 1/n_month)``, below
0.01 for a month of flights against a training window.

**Weather is seasonal, so it cannot fail the check alone.** A month's weather is a narrow
slice of a training window that spans several months, whatever the world does: on the 2013
data, ``temp`` has a PSI of 1.2 (March against January-February) and 2.8 (December against
January-November); ``dewp`` 0.81 and 1.8 and ``pressure`` 0.86 and 0.24 over the same pairs,
while no other feature exceeds 0.22 and the prediction of a model trained with the default
settings moves far less (0.004 and 0.16). Gating on them would retrain every month for the
calendar, not for a change.
The weather columns (``SEASONAL_FEATURES``) are measured and shown like every feature, and
make the check warn, but only the other features and the prediction make it fail. A change in
the weather feed that matters to the model shows in the prediction's PSI.

**The reference is a recorded profile, not a recomputation.** When ``trained_model`` trains a
model it records, in the model's MLflow run, the profile of exactly the rows it was fitted on
(:class:`DriftReference`: each feature's bin edges and shares, the category shares, and the
bins of the model's own scores on those rows). Drift is therefore measured against the data
the ``@champion`` actually learned from, whatever happened to the feature partitions since
(a re-landed month, a changed feature build), and without reading every training month again
at each measurement. The alternative, recomputing from the version's ``train_months`` tag,
would silently measure against the partitions' *current* content and cost a full read of the
training window per month measured.

The training-window scores are in-sample: a model is slightly more confident on the rows it
was fitted on than on new ones, so prediction PSI has a small floor even without drift.

This module imports no dagster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from mlops_assets.ml.columns import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    NUMERIC_FEATURES,
    SEASONAL_FEATURES,
)

EPSILON = 1e-4
"""Share given to a bin that is empty on one side, so that PSI stays finite."""
DECILES = 10
SCORE_SAMPLE_ROWS = 20_000
"""Training rows (a seeded sample) scored for the prediction's reference: 2,000 per decile."""
MONTH_SCORE_ROWS = 5_000
"""Rows of a month (a seeded sample) scored for the prediction's drift: a fifth of the model's
time on a month, for a sampling noise of about 0.002 PSI."""
PREDICTION = "delay_probability"
"""The name the prediction's drift is reported under (the served model's output column)."""
REFERENCE_ARTIFACT = "drift/reference.json"
"""Where ``trained_model`` logs the reference profile, in the model's MLflow run."""

Kind = Literal["numeric", "categorical", "prediction"]
Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class NumericProfile:
    """A numeric column of the reference: its bin edges and the share of rows in each bin.

    Attributes:
        feature: Column name.
        edges: Interior bin edges, increasing (the outer edges are -inf and +inf).
        shares: Share of the reference's rows in each of the ``len(edges) + 1`` bins.
        missing_share: Share of the reference's rows where the value is missing.
    """

    feature: str
    edges: tuple[float, ...]
    shares: tuple[float, ...]
    missing_share: float


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical column of the reference: the share of each category it holds.

    Attributes:
        feature: Column name.
        categories: Every category the reference holds, most frequent first.
        shares: Share of the reference's rows in each category.
        missing_share: Share of the reference's rows where the value is missing.
    """

    feature: str
    categories: tuple[str, ...]
    shares: tuple[float, ...]
    missing_share: float


@dataclass(frozen=True)
class DriftReference:
    """What a model was trained on, profiled for drift measurement.

    Attributes:
        months: The training window (the feature partitions the model was fitted on).
        rows: Rows in the training window.
        numeric: Profile of each numeric feature.
        categorical: Profile of each categorical feature.
        prediction: Profile of the model's predicted probability on the training window
            (None when no scores were given).
        prediction_rows: Rows the prediction profile was computed on (a seeded sample).
    """

    months: tuple[str, ...]
    rows: int
    numeric: tuple[NumericProfile, ...]
    categorical: tuple[CategoricalProfile, ...]
    prediction: NumericProfile | None = None
    prediction_rows: int = 0

    def to_json(self) -> str:
        """The profile as JSON (finite numbers only: the outer edges are implicit)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DriftReference:
        """The profile :meth:`to_json` wrote.

        Raises:
            ValueError: When the text is not such a profile.
        """
        try:
            data = json.loads(text)
            prediction = data.get("prediction")
            return cls(
                months=tuple(data["months"]),
                rows=int(data["rows"]),
                numeric=tuple(_numeric_profile(p) for p in data["numeric"]),
                categorical=tuple(
                    CategoricalProfile(
                        feature=p["feature"],
                        categories=tuple(p["categories"]),
                        shares=tuple(float(s) for s in p["shares"]),
                        missing_share=float(p["missing_share"]),
                    )
                    for p in data["categorical"]
                ),
                prediction=_numeric_profile(prediction) if prediction else None,
                prediction_rows=int(data.get("prediction_rows", 0)),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a drift reference profile: {error!r}") from error


def _numeric_profile(data: dict[str, object]) -> NumericProfile:
    edges = data["edges"]
    shares = data["shares"]
    assert isinstance(edges, list) and isinstance(shares, list)
    return NumericProfile(
        feature=str(data["feature"]),
        edges=tuple(float(e) for e in edges),
        shares=tuple(float(s) for s in shares),
        missing_share=float(str(data["missing_share"])),
    )


@dataclass(frozen=True)
class DriftThresholds:
    """PSI above ``warn`` is a moderate shift, above ``fail`` a major one.

    Raises:
        ValueError: Unless ``0 <= warn <= fail``.
    """

    warn: float = 0.1
    fail: float = 0.25

    def __post_init__(self) -> None:
        if not 0 <= self.warn <= self.fail:
            raise ValueError(
                f"drift thresholds need 0 <= warn <= fail, got warn={self.warn}, fail={self.fail}"
            )

    def status(self, psi: float) -> Status:
        """``fail`` above the fail threshold, ``warn`` above the warn threshold, else ``ok``."""
        if psi > self.fail:
            return "fail"
        return "warn" if psi > self.warn else "ok"


@dataclass(frozen=True)
class FeatureDrift:
    """The PSI of one column between the reference and a month.

    Attributes:
        feature: Column name (``delay_probability`` for the prediction).
        kind: ``numeric``, ``categorical`` or ``prediction``.
        psi: Population stability index.
        bins: Bins compared, the missing-value bin included.
        reference_missing_share: Share of missing values in the reference.
        month_missing_share: Share of missing values in the month.
    """

    feature: str
    kind: Kind
    psi: float
    bins: int
    reference_missing_share: float
    month_missing_share: float


@dataclass(frozen=True)
class DriftReport:
    """Every feature's drift and the prediction's, for one month against one reference.

    Attributes:
        features: One entry per feature: the categorical ones, then the numeric ones.
        prediction: The predicted probability's drift (None without a prediction profile).
        rows: Rows of the month.
    """

    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    rows: int

    @property
    def entries(self) -> tuple[FeatureDrift, ...]:
        """The features, then the prediction."""
        return self.features + ((self.prediction,) if self.prediction else ())

    @property
    def max_psi(self) -> float:
        """The largest PSI over the features and the prediction."""
        return max((entry.psi for entry in self.entries), default=0.0)

    def to_frame(
        self, thresholds: DriftThresholds, seasonal: Iterable[str] = SEASONAL_FEATURES
    ) -> pd.DataFrame:
        """One row per entry, largest PSI first.

        Columns: ``feature``, ``kind``, ``psi``, ``status`` (by ``thresholds``), ``gating``
        (False for the ``seasonal`` features, which cannot fail the check alone), ``bins`` and
        the missing-value shares of the reference and the month.
        """
        calendar = set(seasonal)
        entries = sorted(self.entries, key=lambda entry: entry.psi, reverse=True)
        return pd.DataFrame(
            {
                "feature": pd.Series([e.feature for e in entries], dtype="string"),
                "kind": pd.Series([e.kind for e in entries], dtype="string"),
                "psi": pd.Series([e.psi for e in entries], dtype="float64"),
                "status": pd.Series([thresholds.status(e.psi) for e in entries], dtype="string"),
                "gating": pd.Series([e.feature not in calendar for e in entries], dtype="bool"),
                "bins": pd.Series([e.bins for e in entries], dtype="int64"),
                "reference_missing_share": pd.Series(
                    [e.reference_missing_share for e in entries], dtype="float64"
                ),
                "month_missing_share": pd.Series(
                    [e.month_missing_share for e in entries], dtype="float64"
                ),
            }
        )


DRIFT_TABLE_COLUMNS = ("feature", "kind", "psi", "status", "gating")
"""The columns of :meth:`DriftReport.to_frame` that :func:`judge` reads."""


@dataclass(frozen=True)
class DriftVerdict:
    """What a month's drift table says, as the drift check reports it.

    Attributes:
        outcome: ``fail`` when a gating entry is above the fail threshold, ``warn`` when any
            entry is above the warn threshold, else ``ok``.
        failing: The gating entries above the fail threshold, largest PSI first.
        flagged: Every entry above the warn threshold as (feature, PSI, status, gating),
            largest PSI first.
        largest: The entry with the largest PSI as (feature, PSI).
    """

    outcome: Status
    failing: tuple[str, ...]
    flagged: tuple[tuple[str, float, Status, bool], ...]
    largest: tuple[str, float]

    def describe(self, limit: int = 8) -> str:
        """One paragraph for the check's description: the verdict and the worst entries."""

        def entry(feature: str, value: float, status: Status, gating: bool) -> str:
            return f"{feature} {value:.3f} ({status}{'' if gating else ', seasonal'})"

        worst = ", ".join(entry(*row) for row in self.flagged[:limit])
        more = f" and {len(self.flagged) - limit} more" if len(self.flagged) > limit else ""
        if self.outcome == "fail":
            return (
                f"major drift in {len(self.failing)} gating feature(s): "
                f"{', '.join(self.failing[:limit])}. Above the warn threshold: {worst}{more}."
            )
        if self.outcome == "warn":
            return (
                "no gating feature above the fail threshold. Above the warn threshold: "
                f"{worst}{more}."
            )
        return (
            "every feature and the prediction within the warn threshold (largest: "
            f"{self.largest[0]} {self.largest[1]:.3f})."
        )


def judge(table: pd.DataFrame) -> DriftVerdict:
    """The verdict on a drift table (:meth:`DriftReport.to_frame`).

    Raises:
        ValueError: When the table lacks a column of ``DRIFT_TABLE_COLUMNS`` or has no rows.
    """
    absent = [c for c in DRIFT_TABLE_COLUMNS if c not in table.columns]
    if absent or table.empty:
        raise ValueError(f"not a drift table: missing columns {absent} or no rows")
    rows = table.sort_values("psi", ascending=False, kind="stable")
    flagged = tuple(
        (str(r.feature), float(r.psi), r.status, bool(r.gating))
        for r in rows.itertuples(index=False)
        if r.status != "ok"
    )
    failing = tuple(f for f, _, status, gating in flagged if status == "fail" and gating)
    outcome: Status = "fail" if failing else "warn" if flagged else "ok"
    top = rows.iloc[0]
    return DriftVerdict(
        outcome=outcome,
        failing=failing,
        flagged=flagged,
        largest=(str(top["feature"]), float(top["psi"])),
    )


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = EPSILON) -> float:
    """Population stability index between two distributions over the same bins.

    Args:
        expected: Share of the reference in each bin.
        actual: Share of the month in each bin, in the same order.
        epsilon: Floor of a share, so that an empty bin keeps the logarithm finite.

    Raises:
        ValueError: When the two have different lengths.
    """
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} expected shares against {len(actual)} actual shares")
    e = np.maximum(np.asarray(expected, dtype="float64"), epsilon)
    a = np.maximum(np.asarray(actual, dtype="float64"), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(counts: np.ndarray, total: int) -> np.ndarray:
    return counts / total if total else np.zeros(len(counts))


def _numeric_values(values: pd.Series | np.ndarray) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="raise").to_numpy(
        dtype="float64", na_value=np.nan
    )


def _bin_counts(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    """Rows per bin, bins closed on the right: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    index = np.searchsorted(np.asarray(edges, dtype="float64"), values, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def profile_numeric(
    feature: str, values: pd.Series | np.ndarray, bins: int = DECILES
) -> NumericProfile:
    """The reference profile of a numeric column: quantile bin edges and shares.

    Args:
        feature: Column name.
        values: The reference's values (NaN counts as missing).
        bins: Quantile bins (10: deciles); tied quantiles merge into one edge.

    Raises:
        ValueError: With fewer than 2 bins or no rows.
    """
    if bins < 2:
        raise ValueError(f"numeric profiles need at least 2 bins, got {bins}")
    data = _numeric_values(values)
    if len(data) == 0:
        raise ValueError(f"cannot profile {feature!r}: no rows")
    present = data[~np.isnan(data)]
    edges: tuple[float, ...] = ()
    if len(present):
        quantiles = np.quantile(present, np.arange(1, bins) / bins)
        edges = tuple(float(q) for q in np.unique(quantiles))
    counts = _bin_counts(edges, present)
    return NumericProfile(
        feature=feature,
        edges=edges,
        shares=tuple(float(s) for s in counts / len(data)),
        missing_share=float((len(data) - len(present)) / len(data)),
    )


@dataclass(frozen=True)
class _CategoryCounts:
    counts: dict[str, int]
    missing: int
    total: int


def _category_counts(values: pd.Series | np.ndarray) -> _CategoryCounts:
    """Rows per category (as text) and missing rows; counted before any conversion (fast)."""
    data = pd.Series(values)
    counts: dict[str, int] = {}
    for category, count in data.value_counts(dropna=True).items():
        counts[str(category)] = counts.get(str(category), 0) + int(count)
    return _CategoryCounts(counts=counts, missing=int(data.isna().sum()), total=len(data))


def profile_categorical(feature: str, values: pd.Series | np.ndarray) -> CategoricalProfile:
    """The reference profile of a categorical column: the share of each category.

    Args:
        feature: Column name.
        values: The reference's values (None/NaN count as missing).

    Raises:
        ValueError: With no rows.
    """
    data = _category_counts(values)
    if data.total == 0:
        raise ValueError(f"cannot profile {feature!r}: no rows")
    # Most frequent first; ties in name order, so the same rows give the same profile.
    ordered = sorted(data.counts.items(), key=lambda item: (-item[1], item[0]))
    return CategoricalProfile(
        feature=feature,
        categories=tuple(category for category, _ in ordered),
        shares=tuple(count / data.total for _, count in ordered),
        missing_share=data.missing / data.total,
    )


def numeric_drift(
    profile: NumericProfile, values: pd.Series | np.ndarray, kind: Kind = "numeric"
) -> FeatureDrift:
    """PSI of a month's numeric column against its reference profile.

    Args:
        profile: The reference profile of the column.
        values: The month's values.
        kind: ``numeric`` for a feature, ``prediction`` for the model's score.
    """
    data = _numeric_values(values)
    missing = np.isnan(data)
    present = data[~missing]
    counts = _bin_counts(profile.edges, present)
    actual = [*_shares(counts, len(data)), _shares(np.array([missing.sum()]), len(data))[0]]
    expected = [*profile.shares, profile.missing_share]
    return FeatureDrift(
        feature=profile.feature,
        kind=kind,
        psi=psi(expected, actual),
        bins=len(expected),
        reference_missing_share=profile.missing_share,
        month_missing_share=float(actual[-1]),
    )


def categorical_drift(profile: CategoricalProfile, values: pd.Series | np.ndarray) -> FeatureDrift:
    """PSI of a month's categorical column against its reference profile.

    Categories the reference never saw share one bin (expected share 0, so ``EPSILON``).
    """
    data = _category_counts(values)
    known = [data.counts.get(c, 0) for c in profile.categories]
    unseen = sum(data.counts.values()) - sum(known)
    actual = [*_shares(np.array([*known, unseen, data.missing], dtype="float64"), data.total)]
    expected = [*profile.shares, 0.0, profile.missing_share]
    return FeatureDrift(
        feature=profile.feature,
        kind="categorical",
        psi=psi(expected, actual),
        bins=len(expected),
        reference_missing_share=profile.missing_share,
        month_missing_share=float(actual[-1]),
    )


def build_reference(
    features: pd.DataFrame,
    *,
    months: Iterable[str],
    numeric: Sequence[str],
    categorical: Sequence[str],
    scores: np.ndarray | None = None,
    bins: int = DECILES,
) -> DriftReference:
    """Profile the training window: every feature, and the model's scores when given.

    Args:
        features: The training rows.
        months: The months they come from.
        numeric: Numeric feature columns.
        categorical: Categorical feature columns.
        scores: The model's predicted probabilities on (a sample of) the training rows.
        bins: Quantile bins of the numeric columns and the scores.

    Raises:
        ValueError: When a column is missing or there are no rows.
    """
    absent = [c for c in (*numeric, *categorical) if c not in features.columns]
    if absent:
        raise ValueError(f"the training rows have no column(s) {absent}")
    return DriftReference(
        months=tuple(sorted(months)),
        rows=len(features),
        numeric=tuple(profile_numeric(c, features[c], bins) for c in numeric),
        categorical=tuple(profile_categorical(c, features[c]) for c in categorical),
        prediction=profile_numeric(PREDICTION, scores, bins) if scores is not None else None,
        prediction_rows=0 if scores is None else len(scores),
    )


def measure_drift(
    reference: DriftReference, features: pd.DataFrame, scores: np.ndarray | None = None
) -> DriftReport:
    """PSI of every profiled feature of a month, and of its scores, against the reference.

    Args:
        reference: The training window's profile.
        features: The month's rows (every profiled column).
        scores: The model's predicted probabilities on the month's rows (or a sample of them,
            see :func:`sample_rows`); required when the reference has a prediction profile.

    Raises:
        ValueError: When the month lacks a profiled column, has no rows, or scores are
            missing for a reference that profiled them.
    """
    names = [p.feature for p in reference.numeric] + [p.feature for p in reference.categorical]
    absent = [c for c in names if c not in features.columns]
    if absent:
        raise ValueError(f"the month has no column(s) {absent}")
    if len(features) == 0:
        raise ValueError("the month has no rows: nothing to compare")
    if reference.prediction is not None and scores is None:
        raise ValueError("the reference profiles the model's scores: pass the month's scores")
    drifts = [categorical_drift(p, features[p.feature]) for p in reference.categorical]
    drifts += [numeric_drift(p, features[p.feature]) for p in reference.numeric]
    prediction = (
        numeric_drift(reference.prediction, scores, kind="prediction")
        if reference.prediction is not None and scores is not None
        else None
    )
    return DriftReport(features=tuple(drifts), prediction=prediction, rows=len(features))


def profile_training_window(
    train: pd.DataFrame,
    months: Iterable[str],
    predict_proba: Callable[[pd.DataFrame], np.ndarray],
    *,
    seed: int,
    rows: int = SCORE_SAMPLE_ROWS,
) -> DriftReference:
    """The reference of a trained model: its training rows' features and its own scores.

    Every training row is profiled; the scores come from a seeded sample of them (scoring
    every row would cost seconds for no better deciles).

    Args:
        train: The rows the model was fitted on (``FEATURE_COLUMNS`` at least).
        months: The training window.
        predict_proba: The fitted model's probability of delay for feature rows.
        seed: Seed of the sample.
        rows: Rows scored at most.
    """
    sample = sample_rows(train, rows, seed)
    scores = np.asarray(predict_proba(sample[list(FEATURE_COLUMNS)]), dtype="float64")
    return build_reference(
        train,
        months=months,
        numeric=NUMERIC_FEATURES,
        categorical=CATEGORICAL_FEATURES,
        scores=scores,
    )


def sample_rows(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame``, drawn with ``seed`` (all of them when fewer)."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)
