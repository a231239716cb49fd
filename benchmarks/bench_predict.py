"""Where a month's scoring time goes, and the served model's predict throughput.

Builds the features of a few 2013 months from the landing zone (as the month partitions do),
trains the model the pipeline would pick on them (the default candidate search), logs it
with ``log_pyfunc_model`` to a scratch MLflow store and loads it back as the served pyfunc.
Then times, on one month's feature rows, in interleaved rounds (median of the repeats):

- the served model: MLflow's ``PyFuncModel.predict`` (schema enforcement included; the
  baseline of the ratios) and the model's own ``predict`` without it;
- the fitted pipeline's ``predict_proba`` and its parts: the column selection, the ordinal
  encoding, the booster's own re-encoding of the codes, the trees on float64 values (with
  1 and with all OpenMP threads);
- the scoring step without Dagster: read the month's features, score, store the predictions.

Also the served answer against the in-process one, and the held-out ROC AUC and tree time
of the first k trees (what fewer trees would cost in quality). Prints JSON.
Usage: python -m benchmarks.bench_predict [--landing DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.ml.candidates import (
    SearchSpace,
    compact_training_months,
    default_workers,
    select_and_train,
)
from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.landed import month_features
from mlops_assets.ml.packaging import OUTPUT_COLUMN
from mlops_assets.ml.scoring import score_flights
from mlops_assets.ml.training import serving_dtypes

TRAIN_MONTHS = ("2013-01", "2013-02", "2013-03")
"""Candidates fitted on January-February, compared on March, the winner refitted on all."""
SCORED_MONTH = "2013-03"
"""The month the issue measured (27,902 flights)."""
HELD_OUT_MONTH = "2013-04"
"""For the quality of fewer trees: a month the model never saw."""


def medians(timers: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each timer over ``repeats`` interleaved rounds, after one warm-up.

    Interleaving spreads a busy moment of the machine over every figure instead of one.
    """
    times: dict[str, list[float]] = {name: [] for name in timers}
    for round_ in range(repeats + 1):
        for name, timer in timers.items():
            started = time.perf_counter()
            timer()
            if round_:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def run(landing_dir: Path, repeats: int) -> dict[str, Any]:
    """Measure and return the figures."""
    import mlflow
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    from threadpoolctl import threadpool_limits

    from mlops_assets.ml.packaging import log_pyfunc_model

    by_month = month_features(landing_dir, [*TRAIN_MONTHS, HELD_OUT_MONTH])
    outcome = select_and_train(
        compact_training_months({m: by_month[m] for m in TRAIN_MONTHS}),
        SearchSpace(),
        default_workers(),
    )
    pipeline = outcome.model
    encoder, booster = pipeline[0], pipeline[-1]
    features = by_month[SCORED_MONTH]
    rows = features[list(FEATURE_COLUMNS)]

    with tempfile.TemporaryDirectory() as scratch:
        mlflow.set_tracking_uri(f"sqlite:///{Path(scratch) / 'mlflow.db'}")
        # Artifacts in the scratch folder too, not in ./mlruns (the default experiment's).
        experiment = mlflow.create_experiment(
            "bench_predict", artifact_location=(Path(scratch) / "artifacts").as_uri()
        )
        with mlflow.start_run(experiment_id=experiment):
            info = log_pyfunc_model(pipeline, serving_dtypes(features.head(5)), {})
        served = mlflow.pyfunc.load_model(info.model_uri)
        model = served.unwrap_python_model()
        features_file = Path(scratch) / "features.parquet"
        features.to_parquet(features_file, index=False)
        out_file = Path(scratch) / "predictions.parquet"

        def scoring_step(predict: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
            month = pd.read_parquet(features_file)
            score_flights(month, predict, "1").to_parquet(out_file, index=False)

        encoded = encoder.transform(rows)
        recoded = booster._preprocessor.transform(encoded)
        known, index_map = booster._bin_mapper.make_known_categories_bitsets()
        threads = _openmp_effective_n_threads()

        def raw_trees(n_threads: int) -> None:
            for (tree,) in booster._predictors:
                tree.predict(recoded, known, index_map, n_threads)

        timers: dict[str, Callable[[], object]] = {
            "served_pyfunc_predict": lambda: served.predict(rows),
            "served_model_predict_no_mlflow": lambda: model.predict(None, rows),
            "pipeline_predict_proba": lambda: pipeline.predict_proba(rows),
            "column_selection": lambda: rows[list(FEATURE_COLUMNS)],
            "ordinal_encoding": lambda: encoder.transform(rows),
            "booster_reencoding": lambda: booster._preprocessor.transform(encoded),
            "trees_all_threads": lambda: raw_trees(threads),
            "trees_1_thread": lambda: raw_trees(1),
            "scoring_step": lambda: scoring_step(served.predict),
            "read_features": lambda: pd.read_parquet(features_file),
        }
        with threadpool_limits(threads, user_api="openmp"):
            seconds = medians(timers, repeats)
        in_process = pipeline.predict_proba(rows)[:, 1]
        answer = served.predict(rows)[OUTPUT_COLUMN].to_numpy()

    n = len(rows)
    baseline = seconds["served_pyfunc_predict"]
    figures: dict[str, Any] = {
        "month": SCORED_MONTH,
        "rows": n,
        "repeats": repeats,
        "openmp_threads": threads,
        "chosen": outcome.chosen.name,
        "selection": outcome.selection,
        "ms": {name: round(value * 1000, 1) for name, value in seconds.items()},
        "rows_per_s": {name: round(n / value) for name, value in seconds.items()},
        "ratio_to_served_pyfunc_predict": {
            name: round(value / baseline, 3) for name, value in seconds.items()
        },
        "served_max_abs_diff_to_in_process": float(np.max(np.abs(answer - in_process))),
        "served_equals_in_process": bool(np.array_equal(answer, in_process)),
    }
    if isinstance(booster, HistGradientBoostingClassifier):
        figures["model"] = model_facts(booster)
        figures["held_out_roc_auc_of_first_trees"] = fewer_trees(
            booster, encoder, by_month[HELD_OUT_MONTH]
        )
    return figures


def model_facts(booster: Any) -> dict[str, Any]:
    """How many trees the booster walks, and how large they are."""
    return {
        "trees": len(booster._predictors),
        "n_iter": int(booster.n_iter_),
        "early_stopping": booster.early_stopping,
        "leaves_per_tree": float(
            np.mean([tree.nodes["is_leaf"].sum() for (tree,) in booster._predictors])
        ),
        "max_depth": max(tree.get_max_depth() for (tree,) in booster._predictors),
    }


def fewer_trees(booster: Any, encoder: Any, held_out: pd.DataFrame) -> dict[str, float]:
    """Held-out ROC AUC of the first k trees of the fitted model, k in (50, 100, 150, 200, all).

    Only the share of the tree time scales with k; retraining with fewer trees and another
    learning rate (a model change) would score differently.
    """
    from sklearn.metrics import roc_auc_score

    y = held_out[TARGET].to_numpy()
    encoded = encoder.transform(held_out[list(FEATURE_COLUMNS)])
    total = len(booster._predictors)
    wanted = {k for k in (50, 100, 150, 200) if k < total} | {total}
    aucs = {}
    for k, proba in enumerate(booster.staged_predict_proba(encoded), start=1):
        if k in wanted:
            aucs[f"trees_{k}"] = round(float(roc_auc_score(y, proba[:, 1])), 4)
    return aucs


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, default=Path("data/landing"))
    parser.add_argument("--repeats", type=int, default=7)
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.landing, arguments.repeats), indent=2))
