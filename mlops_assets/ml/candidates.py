"""Model candidates: a logistic-regression baseline and a seeded HistGradientBoosting search.

Candidates are fitted on the training months but the last, and compared on that last
training month (the validation month, which precedes the held-out month): the held-out
month stays untouched until the chosen model is evaluated. The winner is then refitted on
every training month. Everything is seeded, so the same rows and settings give the same
choice and the same model.

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
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_assets.ml.columns import CATEGORICAL_FEATURES, FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET
from mlops_assets.ml.training import TrainingSettings, build_classifier, concat_months

LOGISTIC, BOOSTING = "logistic_regression", "hist_gradient_boosting"


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


@dataclass(frozen=True)
class CandidateResult:
    """A candidate's validation scores and how long its fit took."""

    candidate: Candidate
    roc_auc: float
    log_loss: float
    brier: float
    fit_seconds: float

    def as_row(self) -> dict[str, float | int | str]:
        """The candidate as one row of the comparison table."""
        return {
            "candidate": self.candidate.name,
            "family": self.candidate.family,
            "params": ", ".join(f"{k}={v}" for k, v in sorted(self.candidate.params.items())),
            "validation_roc_auc": round(self.roc_auc, 6),
            "validation_log_loss": round(self.log_loss, 6),
            "validation_brier": round(self.brier, 6),
            "fit_seconds": round(self.fit_seconds, 2),
        }


@dataclass(frozen=True)
class ValidationSplit:
    """Rows the candidates are fitted on, and the month they are compared on."""

    fit: pd.DataFrame
    validation: pd.DataFrame
    fit_months: list[str]
    validation_month: str


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
        classifier = LogisticRegression(
            C=float(candidate.params["C"]), max_iter=1000, random_state=seed
        )
        return Pipeline([("encode", encoder), ("classify", classifier)])
    raise ValueError(f"unknown model family {candidate.family!r} of candidate {candidate.name!r}")


def fit_candidate(candidate: Candidate, train: pd.DataFrame, seed: int) -> Pipeline:
    """Fit ``candidate`` on the feature columns and target of ``train``."""
    model = build_candidate(candidate, seed)
    model.fit(train[list(FEATURE_COLUMNS)], train[TARGET])
    return model


def validation_split(features_by_month: Mapping[str, pd.DataFrame]) -> ValidationSplit | None:
    """Fit on every training month but the last; validate on the last (None with one month).

    Args:
        features_by_month: The training months only (the held-out month excluded).
    """
    months = sorted(features_by_month)
    if len(months) < 2:
        return None
    return ValidationSplit(
        fit=concat_months([features_by_month[m] for m in months[:-1]]),
        validation=features_by_month[months[-1]],
        fit_months=months[:-1],
        validation_month=months[-1],
    )


def _score(candidate: Candidate, split: ValidationSplit, seed: int) -> CandidateResult:
    started = time.perf_counter()
    model = fit_candidate(candidate, split.fit, seed)
    seconds = time.perf_counter() - started
    proba = model.predict_proba(split.validation[list(FEATURE_COLUMNS)])[:, 1]
    y_true = split.validation[TARGET].to_numpy()
    return CandidateResult(
        candidate=candidate,
        roc_auc=float(roc_auc_score(y_true, proba)),
        log_loss=float(log_loss(y_true, proba, labels=[0, 1])),
        brier=float(brier_score_loss(y_true, proba)),
        fit_seconds=seconds,
    )


def default_workers() -> int:
    """Candidates fitted at once by default: one per two cores (boosting uses both of a pair)."""
    import os

    return max(1, (os.cpu_count() or 1) // 2)


def compare_candidates(
    candidates: Sequence[Candidate], split: ValidationSplit, seed: int, workers: int = 1
) -> list[CandidateResult]:
    """Fit and score every candidate, ``workers`` at a time, in the candidates' order.

    With several workers each runs in its own process (joblib's loky backend) and its
    native thread pools are capped so that the workers share the cores rather than
    oversubscribe them. The results do not depend on ``workers``.
    """
    if workers <= 1 or len(candidates) <= 1:
        return [_score(candidate, split, seed) for candidate in candidates]
    import os

    from joblib import Parallel, delayed, parallel_config

    threads = max(1, (os.cpu_count() or 1) // workers)
    with parallel_config(backend="loky", inner_max_num_threads=threads):
        results = Parallel(n_jobs=workers)(
            delayed(_score)(candidate, split, seed) for candidate in candidates
        )
    return list(results)


def best_candidate(results: Sequence[CandidateResult]) -> CandidateResult:
    """The highest validation AUC; on a tie, the earlier (simpler) candidate."""
    if not results:
        raise ValueError("no candidate results to choose from")
    return max(results, key=lambda result: (result.roc_auc, -results.index(result)))


@dataclass(frozen=True)
class TrainingOutcome:
    """The chosen candidate refitted on every training month, and how it was chosen."""

    model: Pipeline
    chosen: Candidate
    results: list[CandidateResult]
    validation_month: str | None
    selection: str


def select_and_train(
    train_by_month: Mapping[str, pd.DataFrame], space: SearchSpace, workers: int = 1
) -> TrainingOutcome:
    """Compare the candidates on the last training month, then refit the best on all of them.

    Args:
        train_by_month: The training months' feature rows (the held-out month excluded).
        space: The candidates and the seed.
        workers: Candidates fitted at once.

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
    best = best_candidate(results)
    return TrainingOutcome(
        model=fit_candidate(best.candidate, train, space.random_seed),
        chosen=best.candidate,
        results=results,
        validation_month=split.validation_month,
        selection=(
            f"{best.candidate.name}: best validation ROC AUC {best.roc_auc:.4f} of "
            f"{len(results)} candidates on {split.validation_month}"
        ),
    )


SearchMode = Literal["auto", "full"]


@dataclass(frozen=True)
class SearchRecord:
    """What the last full search chose, for which search, and where it ran.

    Attributes:
        fingerprint: :func:`search_fingerprint` of the search space it searched.
        chosen: The winning candidate (its name, family and hyper-parameters).
        searched_in: Where the search ran (the Dagster run id).
    """

    fingerprint: str
    chosen: Candidate
    searched_in: str

    def as_dict(self) -> dict[str, object]:
        """A JSON-serializable form (see :meth:`from_dict`)."""
        return {
            "fingerprint": self.fingerprint,
            "chosen": {**asdict(self.chosen), "params": dict(self.chosen.params)},
            "searched_in": self.searched_in,
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
    train_by_month: Mapping[str, pd.DataFrame], candidate: Candidate, seed: int, reason: str
) -> TrainingOutcome:
    """Fit ``candidate`` on every training month, without comparing candidates.

    Args:
        train_by_month: The training months' feature rows (the held-out month excluded).
        candidate: The configuration a search chose earlier.
        seed: The models' seed.
        reason: Why there is no search (becomes the outcome's ``selection``).
    """
    train = concat_months([train_by_month[m] for m in sorted(train_by_month)])
    return TrainingOutcome(
        model=fit_candidate(candidate, train, seed),
        chosen=candidate,
        results=[],
        validation_month=None,
        selection=reason,
    )
