"""Model candidates: a logistic-regression baseline and a seeded HistGradientBoosting search.

Candidates are fitted on the training months but the last, and compared on that last
training month (the validation month, which precedes the held-out month): the held-out
month stays untouched until the chosen model is evaluated. A boosting candidate is also
scored at fewer trees of the same fit (``STAGED_TREES``), each a candidate of its own. Each
candidate's validation ROC AUC gets a paired day-block bootstrap interval of AUC(best) -
AUC(candidate) (the promotion gate's machinery); the chosen candidate is the cheapest whose
interval's upper bound is below ``SELECTION_MARGIN`` (0.005), i.e. at most that much worse
than the best with 95% confidence. It is then fitted on the training months
(``CalibrationMode``) and its operating threshold taken from the validation month.
Everything is seeded, so the same rows and settings give the same choice and the same
model.

A search costs several fits; a new month rarely changes which configuration wins. So a
retraining either searches (:func:`select_and_train`) or refits the configuration the last
search chose on the new training window (:func:`refit`); :func:`decide_search` says which,
and why, from a :class:`SearchRecord` of the last search.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_assets.ml.calibration import Calibration, calibrate, f1_threshold
from mlops_assets.ml.columns import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET
from mlops_assets.ml.promotion import (
    DEPARTURE_COLUMN,
    AucComparison,
    bootstrap_aucs,
    departure_days,
)
from mlops_assets.ml.training import (
    TrainingSettings,
    build_classifier,
    compact_features,
    concat_months,
)

LOGISTIC, BOOSTING = "logistic_regression", "hist_gradient_boosting"

STAGED_TREES: tuple[int, ...] = (50, 100, 200)
"""Tree counts a boosting candidate is also scored at (those below its ``max_iter``)."""
VALIDATION_KEYS: tuple[str, ...] = (DEPARTURE_COLUMN,)
"""What the comparison reads of the validation month besides the model's columns."""
SELECTION_RESAMPLES = 1000
"""Day-block bootstrap resamples of the validation month (seeded with the search's seed)."""
SELECTION_CONFIDENCE = 0.95
"""Two-sided confidence of each candidate's interval against the best."""
SELECTION_MARGIN = 0.005
"""A cheaper candidate wins when it is, with that confidence, at most this much ROC AUC worse
than the best (the upper bound of its gap's interval is below it)."""


@dataclass(frozen=True)
class Candidate:
    """One model to try: its family and its hyper-parameters."""

    name: str
    family: str
    params: Mapping[str, float | int] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchSpace:
    """The candidates to compare (documented defaults; every field is launchpad config).

    Attributes:
        learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization: The boosting
            grid; ``trials`` combinations are drawn from it without replacement.
        trials: How many boosting combinations to try (0 tries none).
        max_iter: Boosting iterations of every boosting candidate.
        logistic_c: Inverse regularization strength of the baseline.
        include_baseline: Whether the logistic-regression baseline competes.
        random_seed: Seed of the draw and of every model.
    """

    learning_rate: tuple[float, ...] = (0.05, 0.1)
    max_leaf_nodes: tuple[int, ...] = (15, 31, 63)
    min_samples_leaf: tuple[int, ...] = (20, 200)
    l2_regularization: tuple[float, ...] = (0.0, 1.0)
    trials: int = 2
    max_iter: int = 300
    logistic_c: float = 1.0
    include_baseline: bool = True
    random_seed: int = 42


def candidate_cost(candidate: Candidate) -> tuple[int, float]:
    """A deterministic cost to order candidates by: the baseline, then trees x leaves.

    Raises:
        ValueError: For an unknown family.
    """
    if candidate.family == LOGISTIC:
        return (0, 0.0)
    if candidate.family == BOOSTING:
        params = candidate.params
        return (1, float(params["max_iter"]) * float(params["max_leaf_nodes"]))
    raise ValueError(f"unknown model family {candidate.family!r} of candidate {candidate.name!r}")


def describe_cost(candidate: Candidate) -> str:
    """The cost :func:`candidate_cost` orders by, in words."""
    if candidate.family == BOOSTING:
        params = candidate.params
        return f"{params['max_iter']} trees x {params['max_leaf_nodes']} leaves"
    return candidate.family.replace("_", " ")


@dataclass(frozen=True)
class CandidateResult:
    """A candidate's validation scores, how long its fit took, and its gap to the best.

    Attributes:
        fit_seconds: The fit's duration; the variants of one boosting fit at fewer trees
            share it.
        gap: AUC(best) - AUC(this candidate) on the validation month and its paired
            day-block bootstrap interval (``challenger`` is the best; the best's own gap is
            0); None until :func:`compare_candidates` compared the candidates.
    """

    candidate: Candidate
    roc_auc: float
    log_loss: float
    brier: float
    fit_seconds: float
    gap: AucComparison | None = None
    threshold: float = 0.5
    """The operating threshold of this candidate's probabilities on the validation month
    (``mlops_assets.ml.calibration.THRESHOLD_RULE``)."""

    @property
    def within_margin(self) -> bool:
        """Whether it is at most :data:`SELECTION_MARGIN` worse than the best, with confidence.

        That is, the upper bound of the interval of AUC(best) - AUC(it) is below the margin.
        An interval that merely includes 0 is not enough: a wide one (a weak baseline on a
        noisy month) would let a candidate 0.03 worse through.
        """
        return self.gap is not None and self.gap.high < SELECTION_MARGIN

    def as_row(self) -> dict[str, float | int | str]:
        """The candidate as one row of the comparison table."""
        gap = self.gap
        return {
            "candidate": self.candidate.name,
            "family": self.candidate.family,
            "params": ", ".join(f"{k}={v}" for k, v in sorted(self.candidate.params.items())),
            "validation_roc_auc": round(self.roc_auc, 6),
            "auc_gap_to_best": round(gap.delta, 6) if gap else float("nan"),
            "auc_gap_low": round(gap.low, 6) if gap else float("nan"),
            "auc_gap_high": round(gap.high, 6) if gap else float("nan"),
            "validation_log_loss": round(self.log_loss, 6),
            "validation_brier": round(self.brier, 6),
            "fit_seconds": round(self.fit_seconds, 2),
        }


@dataclass(frozen=True)
class ValidationSplit:
    """Rows the candidates are fitted on, the month they are compared on, and its days.

    Attributes:
        days: The local day of each validation row (the comparison's bootstrap blocks).
    """

    fit: pd.DataFrame
    validation: pd.DataFrame
    fit_months: list[str]
    validation_month: str
    days: np.ndarray


def propose_candidates(space: SearchSpace) -> list[Candidate]:
    """The baseline (if included), then ``trials`` boosting combinations drawn with the seed.

    Raises:
        ValueError: When no candidate would remain.
    """
    candidates = []
    if space.include_baseline:
        candidates.append(Candidate("logistic_regression", LOGISTIC, {"C": space.logistic_c}))
    grid = list(
        itertools.product(
            space.learning_rate,
            space.max_leaf_nodes,
            space.min_samples_leaf,
            space.l2_regularization,
        )
    )
    rng = np.random.default_rng(space.random_seed)
    drawn = rng.choice(len(grid), size=min(space.trials, len(grid)), replace=False)
    for number, index in enumerate(sorted(int(i) for i in drawn), start=1):
        learning_rate, leaves, min_leaf, l2 = grid[index]
        candidates.append(
            Candidate(
                f"hgb_{number}",
                BOOSTING,
                {
                    "learning_rate": learning_rate,
                    "max_leaf_nodes": leaves,
                    "min_samples_leaf": min_leaf,
                    "l2_regularization": l2,
                    "max_iter": space.max_iter,
                },
            )
        )
    if not candidates:
        raise ValueError("no model candidate: include the baseline or set trials >= 1")
    return candidates


def build_candidate(candidate: Candidate, seed: int) -> Pipeline:
    """The unfitted pipeline of ``candidate``.

    Raises:
        ValueError: For an unknown family.
    """
    if candidate.family == BOOSTING:
        params = dict(candidate.params)
        return build_classifier(
            TrainingSettings(
                learning_rate=float(params["learning_rate"]),
                max_iter=int(params["max_iter"]),
                max_leaf_nodes=int(params["max_leaf_nodes"]),
                min_samples_leaf=int(params["min_samples_leaf"]),
                l2_regularization=float(params["l2_regularization"]),
                random_seed=seed,
            )
        )
    if candidate.family == LOGISTIC:
        encoder = ColumnTransformer(
            [
                (
                    "categorical",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value="missing"),
                        OneHotEncoder(handle_unknown="ignore", min_frequency=20),
                    ),
                    list(CATEGORICAL_FEATURES),
                ),
                (
                    "numeric",
                    make_pipeline(
                        SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                    ),
                    list(NUMERIC_FEATURES),
                ),
            ],
            verbose_feature_names_out=False,
        )
        # Newton-Cholesky suits many rows and a few hundred (mostly one-hot) columns: on
        # January to October 2013 it converges in 4 iterations, 6.4 s and 8 CPU-seconds,
        # where lbfgs took 126, 16.7 s and 28 CPU-seconds (the same peak memory).
        classifier = LogisticRegression(
            C=float(candidate.params["C"]),
            solver="newton-cholesky",
            max_iter=1000,
            random_state=seed,
        )
        return Pipeline([("encode", encoder), ("classify", classifier)])
    raise ValueError(f"unknown model family {candidate.family!r} of candidate {candidate.name!r}")


def fit_candidate(candidate: Candidate, train: pd.DataFrame, seed: int) -> Pipeline:
    """Fit ``candidate`` on the feature columns and target of ``train``."""
    model = build_candidate(candidate, seed)
    model.fit(train[list(FEATURE_COLUMNS)], train[TARGET])
    return model


def compact_training_months(
    features_by_month: Mapping[str, pd.DataFrame],
) -> dict[str, pd.DataFrame]:
    """The training months in compact dtypes, as ``trained_model`` reads them.

    Every month keeps the training columns; the last, the validation month, also keeps
    ``VALIDATION_KEYS`` (see :func:`mlops_assets.ml.training.read_training_months`).
    """
    last = max(features_by_month)
    return {
        month: compact_features(rows, VALIDATION_KEYS if month == last else ())
        for month, rows in features_by_month.items()
    }


def validation_split(features_by_month: Mapping[str, pd.DataFrame]) -> ValidationSplit | None:
    """Fit on every training month but the last; validate on the last (None with one month).

    Args:
        features_by_month: The training months only (the held-out month excluded); the
            last carries ``VALIDATION_KEYS`` besides the model's columns.

    Raises:
        KeyError: When the validation month lacks its departure times.
    """
    months = sorted(features_by_month)
    if len(months) < 2:
        return None
    validation = features_by_month[months[-1]]
    if DEPARTURE_COLUMN not in validation.columns:
        raise KeyError(
            f"the validation month {months[-1]} lacks {DEPARTURE_COLUMN!r}: the candidates' "
            "comparison resamples its days (see compact_training_months)"
        )
    return ValidationSplit(
        fit=concat_months([features_by_month[m] for m in months[:-1]]),
        validation=validation,
        fit_months=months[:-1],
        validation_month=months[-1],
        days=departure_days(validation[DEPARTURE_COLUMN]),
    )


def staged_probabilities(
    candidate: Candidate, model: Pipeline, rows: pd.DataFrame
) -> list[tuple[Candidate, np.ndarray]]:
    """A fitted boosting candidate's probabilities at each of ``STAGED_TREES`` and at all trees.

    The model after ``k`` trees is the one ``max_iter=k`` fits (no early stopping), so each
    stage is a candidate of its own, named ``<name>@<k>``, at the cost of one fit.

    Args:
        candidate: A boosting candidate.
        model: Its fitted pipeline (encoder, then the booster).
        rows: The feature rows to score.
    """
    trees = int(candidate.params["max_iter"])
    stages = {k for k in STAGED_TREES if k < trees} | {trees}
    encoded = model[:-1].transform(rows)
    scored = []
    for count, proba in enumerate(model[-1].staged_predict_proba(encoded), start=1):
        if count in stages:
            variant = (
                candidate
                if count == trees
                else Candidate(
                    f"{candidate.name}@{count}", BOOSTING, {**candidate.params, "max_iter": count}
                )
            )
            scored.append((variant, proba[:, 1]))
    return scored


@dataclass(frozen=True)
class _Scored:
    """A fit's candidates (one, or a boosting fit's stages) and their probabilities."""

    results: list[CandidateResult]
    probabilities: list[np.ndarray]


def _score(candidate: Candidate, split: ValidationSplit, seed: int) -> _Scored:
    started = time.perf_counter()
    model = fit_candidate(candidate, split.fit, seed)
    seconds = time.perf_counter() - started
    rows = split.validation[list(FEATURE_COLUMNS)]
    if candidate.family == BOOSTING:
        scored = staged_probabilities(candidate, model, rows)
    else:
        scored = [(candidate, model.predict_proba(rows)[:, 1])]
    y_true = split.validation[TARGET].to_numpy()
    return _Scored(
        results=[
            CandidateResult(
                candidate=variant,
                roc_auc=float(roc_auc_score(y_true, proba)),
                log_loss=float(log_loss(y_true, proba, labels=[0, 1])),
                brier=float(brier_score_loss(y_true, proba)),
                fit_seconds=seconds,
                threshold=f1_threshold(y_true, proba)[0],
            )
            for variant, proba in scored
        ],
        probabilities=[proba for _, proba in scored],
    )


def default_workers() -> int:
    """Candidates fitted at once by default: one per two cores (boosting uses both of a pair)."""
    import os

    return max(1, (os.cpu_count() or 1) // 2)


def compare_candidates(
    candidates: Sequence[Candidate], split: ValidationSplit, seed: int, workers: int = 1
) -> list[CandidateResult]:
    """Fit and score every candidate, ``workers`` at a time, then pair each with the best.

    A boosting candidate is followed by its stages at fewer trees (``<name>@<k>``, fewest
    first, the full fit last). Every result's ``gap`` is the paired day-block bootstrap of
    AUC(best) - AUC(it) on the validation month, seeded with ``seed``.

    With several workers each fit runs in its own process (joblib's loky backend) and its
    native thread pools are capped so that the workers share the cores rather than
    oversubscribe them. The results do not depend on ``workers``.
    """
    if workers <= 1 or len(candidates) <= 1:
        scored = [_score(candidate, split, seed) for candidate in candidates]
    else:
        import os

        from joblib import Parallel, delayed, parallel_config

        threads = max(1, (os.cpu_count() or 1) // workers)
        with parallel_config(backend="loky", inner_max_num_threads=threads):
            scored = list(
                Parallel(n_jobs=workers)(
                    delayed(_score)(candidate, split, seed) for candidate in candidates
                )
            )
    results = [result for fit in scored for result in fit.results]
    bootstrap = bootstrap_aucs(
        split.validation[TARGET].to_numpy(),
        [proba for fit in scored for proba in fit.probabilities],
        split.days,
        resamples=SELECTION_RESAMPLES,
        seed=seed,
    )
    best = results.index(best_candidate(results))
    return [
        replace(result, gap=bootstrap.compare(best, index, SELECTION_CONFIDENCE))
        for index, result in enumerate(results)
    ]


def best_candidate(results: Sequence[CandidateResult]) -> CandidateResult:
    """The highest validation AUC; on a tie, the earlier (simpler) candidate."""
    if not results:
        raise ValueError("no candidate results to choose from")
    return max(results, key=lambda result: (result.roc_auc, -results.index(result)))


@dataclass(frozen=True)
class Selection:
    """The best candidate, the one chosen, and why, in words."""

    best: CandidateResult
    chosen: CandidateResult
    reason: str


def select_candidate(results: Sequence[CandidateResult], validation_month: str) -> Selection:
    """The cheapest candidate at most :data:`SELECTION_MARGIN` worse than the best.

    At most that much worse: the upper bound of the interval of AUC(best) - AUC(candidate)
    is below the margin (``candidate_cost`` orders them). Among equal costs the earlier
    candidate wins; the best is always a contender.

    Args:
        results: :func:`compare_candidates`' results (each with its ``gap``).
        validation_month: The month they were compared on (for the reason).

    Raises:
        ValueError: With no result, or results not compared to the best.
    """
    best = best_candidate(results)
    gaps: dict[int, AucComparison] = {}
    for result in results:
        if result.gap is None:
            raise ValueError(
                f"{result.candidate.name} was not compared to the best: see compare_candidates"
            )
        gaps[id(result)] = result.gap

    def gap(result: CandidateResult) -> str:
        return f"AUC(best) - AUC({result.candidate.name}) {gaps[id(result)].describe()}"

    contenders = [result for result in results if result.within_margin or result is best]
    chosen = min(
        contenders, key=lambda result: (candidate_cost(result.candidate), results.index(result))
    )
    head = (
        f"best validation ROC AUC {best.roc_auc:.4f} ({best.candidate.name}) of "
        f"{len(results)} candidates on {validation_month}"
    )
    if chosen is not best:
        return Selection(
            best,
            chosen,
            f"{chosen.candidate.name}: the cheapest candidate within {SELECTION_MARGIN} of the "
            f"{head}: it scores {chosen.roc_auc:.4f}, {gap(chosen)} is below "
            f"{SELECTION_MARGIN}, so it is at most that much worse and costs less "
            f"({describe_cost(chosen.candidate)} against {describe_cost(best.candidate)})",
        )
    cheaper = [r for r in results if candidate_cost(r.candidate) < candidate_cost(best.candidate)]
    if not cheaper:
        return Selection(best, chosen, f"{best.candidate.name}: {head}, and the cheapest")
    closest = max(cheaper, key=lambda result: (result.roc_auc, -results.index(result)))
    return Selection(
        best,
        chosen,
        f"{best.candidate.name}: {head}; none of the {len(cheaper)} cheaper candidates is "
        f"shown to be within {SELECTION_MARGIN} of it (the closest: {gap(closest)})",
    )


@dataclass(frozen=True)
class TrainingOutcome:
    """The chosen candidate fitted, how it was chosen, and its operating threshold.

    Attributes:
        threshold: The operating threshold chosen on the validation month (None without
            one: the evaluation's configured threshold applies).
        calibration: The sigmoid map's record when the probabilities were calibrated.
    """

    model: Pipeline
    chosen: Candidate
    results: list[CandidateResult]
    validation_month: str | None
    selection: str
    threshold: float | None = None
    calibration: Calibration | None = None


CalibrationMode = Literal["none", "sigmoid"]
"""``none``: the booster's own probabilities, the chosen candidate refitted on every training
month. ``sigmoid``: the chosen candidate fitted on the training months but the last, its
probabilities mapped by a sigmoid fitted on the last (``mlops_assets.ml.calibration``)."""


def _fit_chosen(
    train_by_month: Mapping[str, pd.DataFrame],
    candidate: Candidate,
    seed: int,
    calibration: CalibrationMode,
) -> tuple[Pipeline, Calibration | None]:
    """The chosen candidate fitted as ``calibration`` says (see :data:`CalibrationMode`)."""
    months = sorted(train_by_month)
    if calibration == "sigmoid" and len(months) >= 2:
        fit = concat_months([train_by_month[m] for m in months[:-1]])
        model = fit_candidate(candidate, fit, seed)
        return calibrate(model, train_by_month[months[-1]], months[-1])
    train = concat_months([train_by_month[m] for m in months])
    return fit_candidate(candidate, train, seed), None


def select_and_train(
    train_by_month: Mapping[str, pd.DataFrame],
    space: SearchSpace,
    workers: int = 1,
    calibration: CalibrationMode = "none",
) -> TrainingOutcome:
    """Compare the candidates on the last training month, then fit the chosen one.

    Args:
        train_by_month: The training months' feature rows (the held-out month excluded).
        space: The candidates and the seed.
        workers: Candidates fitted at once.
        calibration: How the chosen candidate is fitted (:data:`CalibrationMode`); its
            threshold is chosen on the validation month either way.

    With a single training month there is nothing to validate on: the first boosting
    candidate (else the baseline) is trained without a comparison, and ``selection`` says so.
    """
    candidates = propose_candidates(space)
    split = validation_split(train_by_month)
    train = concat_months([train_by_month[m] for m in sorted(train_by_month)])
    if split is None:
        chosen = next((c for c in candidates if c.family == BOOSTING), candidates[0])
        return TrainingOutcome(
            model=fit_candidate(chosen, train, space.random_seed),
            chosen=chosen,
            results=[],
            validation_month=None,
            selection=f"one training month, no validation month: {chosen.name} without comparison",
        )
    results = compare_candidates(candidates, split, space.random_seed, workers)
    selection = select_candidate(results, split.validation_month)
    model, calibrated = _fit_chosen(
        train_by_month, selection.chosen.candidate, space.random_seed, calibration
    )
    return TrainingOutcome(
        model=model,
        chosen=selection.chosen.candidate,
        results=results,
        validation_month=split.validation_month,
        selection=selection.reason,
        threshold=calibrated.threshold if calibrated else selection.chosen.threshold,
        calibration=calibrated,
    )


SearchMode = Literal["auto", "full"]


@dataclass(frozen=True)
class SearchRecord:
    """What the last full search chose, for which search, and where it ran.

    Attributes:
        fingerprint: :func:`search_fingerprint` of the search space it searched.
        chosen: The winning candidate (its name, family and hyper-parameters).
        searched_in: Where the search ran (the Dagster run id).
        threshold: The operating threshold it chose on its validation month (None in
            records from before thresholds were chosen).
    """

    fingerprint: str
    chosen: Candidate
    searched_in: str
    threshold: float | None = None

    def as_dict(self) -> dict[str, object]:
        """A JSON-serializable form (see :meth:`from_dict`)."""
        return {
            "fingerprint": self.fingerprint,
            "chosen": {**asdict(self.chosen), "params": dict(self.chosen.params)},
            "searched_in": self.searched_in,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, object]) -> SearchRecord:
        """The record :meth:`as_dict` wrote.

        Raises:
            ValueError: Naming what is missing or malformed.
        """
        try:
            chosen = record["chosen"]
            if not isinstance(chosen, Mapping):
                raise TypeError(f"'chosen' is {type(chosen).__name__}, not a mapping")
            return cls(
                fingerprint=str(record["fingerprint"]),
                chosen=Candidate(
                    name=str(chosen["name"]),
                    family=str(chosen["family"]),
                    params=dict(chosen["params"]),
                ),
                searched_in=str(record["searched_in"]),
                threshold=(
                    None if record.get("threshold") is None else float(record["threshold"])  # type: ignore[arg-type]
                ),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed search record {dict(record)!r}: {error}") from error


def search_fingerprint(space: SearchSpace, features_version: str = "") -> str:
    """A digest of what decides a search's outcome: its space and the model's features.

    Args:
        space: The candidates searched.
        features_version: The feature table's code version: features that changed meaning
            under the same names call for a new search too.
    """
    payload = {
        "space": asdict(space),
        "features": list(FEATURE_COLUMNS),
        "features_version": features_version,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SearchDecision:
    """Whether a retraining searches or refits, and the reason shown to the user."""

    search: bool
    reason: str


def decide_search(
    mode: SearchMode,
    requested_by: str | None,
    previous: SearchRecord | None,
    fingerprint: str,
) -> SearchDecision:
    """Search again, or refit the configuration the last search chose.

    Args:
        mode: ``full`` always searches; ``auto`` searches only when one of the reasons below
            holds, and otherwise refits.
        requested_by: What asked for a search (the weekly schedule, the drift sensor), or None.
        previous: The last search's record, or None when no search was recorded.
        fingerprint: :func:`search_fingerprint` of the search space configured now.
    """
    if mode == "full":
        return SearchDecision(True, "full search: the run's configuration asks for one")
    if requested_by:
        return SearchDecision(True, f"full search: requested by {requested_by}")
    if previous is None:
        return SearchDecision(True, "full search: no earlier search is recorded")
    if previous.fingerprint != fingerprint:
        return SearchDecision(
            True, "full search: the search configuration or the features changed since the last"
        )
    return SearchDecision(
        False,
        f"refit of {previous.chosen.name}, chosen by the search of run {previous.searched_in} "
        "(no search: the weekly schedule, a drift failure or a new search configuration "
        "starts one)",
    )


def refit(
    train_by_month: Mapping[str, pd.DataFrame],
    candidate: Candidate,
    seed: int,
    reason: str,
    calibration: CalibrationMode = "none",
    threshold: float | None = None,
) -> TrainingOutcome:
    """Fit ``candidate`` on the training months, without comparing candidates.

    Args:
        train_by_month: The training months' feature rows (the held-out month excluded).
        candidate: The configuration a search chose earlier.
        seed: The models' seed.
        reason: Why there is no search (becomes the outcome's ``selection``).
        calibration: How it is fitted (:data:`CalibrationMode`).
        threshold: The threshold the search chose, kept unless a calibration chooses anew.
    """
    model, calibrated = _fit_chosen(train_by_month, candidate, seed, calibration)
    return TrainingOutcome(
        model=model,
        chosen=candidate,
        results=[],
        validation_month=calibrated.month if calibrated else None,
        selection=reason,
        threshold=calibrated.threshold if calibrated else threshold,
        calibration=calibrated,
    )
