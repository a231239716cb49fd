"""The pipeline's computation as one plain pandas/scikit-learn script: no Dagster, no MLflow.

Same loading (month by month, with the month before as context), features, candidate
comparison and training, the rolling backtest's folds, evaluation at the threshold chosen on
the validation month, plots, scoring of every month and every month's drift
against the model's training rows as the assets, for the overhead ratio and the held-out
figures. Prints the held-out metrics as JSON, with the backtest (``backtest_*``), the chosen
candidate, ``drift_s`` and ``scoring_s``, the seconds
the drift and the scoring of every month took (the plain script measured no drift before
2026-12-03).
Usage: python benchmarks/plain_pipeline.py LANDING_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_assets.landing import layout
from mlops_assets.ml import drift
from mlops_assets.ml.backtest import BACKTEST_METRICS, backtest_months, rolling_backtest, summarize
from mlops_assets.ml.candidates import (
    SearchSpace,
    compact_training_months,
    default_workers,
    refit,
    select_and_train,
)
from mlops_assets.ml.columns import FEATURE_COLUMNS, SEASONAL_FEATURES, TARGET
from mlops_assets.ml.evaluation import classification_metrics, diagnostic_plots, feature_importance
from mlops_assets.ml.landed import month_features
from mlops_assets.ml.training import temporal_split


def month_drift(
    train: pd.DataFrame,
    months: list[str],
    by_month: dict[str, pd.DataFrame],
    predict_proba: Callable[[pd.DataFrame], np.ndarray],
) -> None:
    """What ``trained_model`` and ``feature_drift`` compute for drift: the training rows'
    profile, then each month's PSI table against it and its verdict (default thresholds)."""
    reference = drift.profile_training_window(train, months, predict_proba, seed=42)
    thresholds = drift.DriftThresholds(warn=0.1, fail=0.25)
    for rows in by_month.values():
        scored = drift.sample_rows(rows, drift.MONTH_SCORE_ROWS, seed=0)
        report = drift.measure_drift(reference, rows, predict_proba(scored))
        drift.judge(report.to_frame(thresholds, list(SEASONAL_FEATURES)))


def main(landing_dir: Path, out_dir: Path) -> dict[str, float]:
    """Run the whole computation once; the held-out metrics and the drift's seconds."""
    by_month = month_features(landing_dir, layout.landed_months(landing_dir, "flights"))
    split = temporal_split(by_month)
    # Training reads each month in the compact dtypes trained_model reads (categories,
    # float32 where exact; the validation month's departure times): the same computation,
    # the same candidates and the same model.
    train_by_month = compact_training_months({m: by_month[m] for m in split.train_months})
    outcome = select_and_train(train_by_month, SearchSpace(), default_workers())
    model = outcome.model
    # What trained_model's backtest fits: the chosen configuration on the months before each
    # of the three months before the held-out one (the fourth fold is the evaluation).
    folds = rolling_backtest(
        train_by_month,
        [m for m in backtest_months([*by_month], 4) if m != split.holdout_month],
        lambda before: (
            refit(before, outcome.chosen, 42, "backtest", "none", outcome.threshold).model
        ),
    )
    x_holdout = split.holdout[list(FEATURE_COLUMNS)]
    y_holdout = split.holdout[TARGET].to_numpy()
    proba = model.predict_proba(x_holdout)[:, 1]
    threshold = outcome.threshold if outcome.threshold is not None else 0.5
    metrics = classification_metrics(y_holdout, proba, threshold=threshold)
    fold_rows = [fold.as_row() for fold in folds]
    fold_rows.append(
        {"month": split.holdout_month, **{k: metrics.as_dict()[k] for k in BACKTEST_METRICS}}
    )
    backtest = summarize(fold_rows)
    importance = feature_importance(model, x_holdout, y_holdout, sample_rows=5000, seed=42)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in diagnostic_plots(y_holdout, proba, threshold, importance).items():
        (out_dir / name).write_bytes(png)
    started = time.perf_counter()
    for month, rows in by_month.items():
        scored = rows[["month", "sched_dep_utc", "carrier_flight", "tailnum", TARGET]].copy()
        scored["delay_probability"] = model.predict_proba(rows[list(FEATURE_COLUMNS)])[:, 1]
        scored.to_parquet(out_dir / f"predictions-{month}.parquet", index=False)
    scoring_s = time.perf_counter() - started
    started = time.perf_counter()
    month_drift(
        split.train,
        split.train_months,
        by_month,
        lambda rows: model.predict_proba(rows[list(FEATURE_COLUMNS)])[:, 1],
    )
    return {
        **metrics.as_dict(),
        "drift_s": time.perf_counter() - started,
        "scoring_s": scoring_s,
        "chosen": outcome.chosen.name,  # type: ignore[dict-item]
        "selection": outcome.selection,  # type: ignore[dict-item]
        "threshold": threshold,
        **{f"backtest_{key}": value for key, value in backtest.items()},
        **{f"backtest_{row['month']}_roc_auc": row["roc_auc"] for row in fold_rows},  # type: ignore[misc]
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
