"""Does a calibration map learned on the validation month help the next month? A backtest.

For each of the last four months (September to December 2013), the booster is fitted on the
months before the month before it, and the month before it (the validation month) serves to
fit a sigmoid map (``mlops_assets.ml.calibration.calibrate``); the held-out month is scored
as fitted and as calibrated: calibration error, log loss, Brier score and ROC AUC, and the
validation month's delayed share against the held-out month's. Same booster as the ablation
(``TrainingSettings`` defaults but ``--max-iter``), single-threaded. Prints JSON.
Usage: python -m benchmarks.bench_calibration [--landing DIR] [--max-iter N] [--folds K]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
from sklearn.pipeline import Pipeline

from mlops_assets.landing import layout
from mlops_assets.ml.backtest import backtest_months, score_fold
from mlops_assets.ml.calibration import calibrate
from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.landed import month_features
from mlops_assets.ml.training import TrainingSettings, build_classifier, compact_features


def main() -> None:
    """Print each fold's figures as fitted and as calibrated, as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, default=Path("data/landing"))
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    months = layout.landed_months(args.landing, "flights")
    by_month = {
        m: compact_features(rows) for m, rows in month_features(args.landing, months).items()
    }
    folds = {}
    for month in backtest_months(months, args.folds):
        before = sorted(m for m in by_month if m < month)
        fit = pd.concat([by_month[m] for m in before[:-1]], ignore_index=True)
        model: Pipeline = build_classifier(TrainingSettings(max_iter=args.max_iter))
        model.fit(fit[list(FEATURE_COLUMNS)], fit[TARGET])
        calibrated, record = calibrate(model, by_month[before[-1]], before[-1])
        fitted = score_fold(model, month, by_month[month], before[:-1]).metrics
        mapped = score_fold(calibrated, month, by_month[month], before[:-1]).metrics
        folds[month] = {
            "validation_month": before[-1],
            "delayed_share": {
                "validation": round(float(by_month[before[-1]][TARGET].mean()), 3),
                "held_out": round(float(by_month[month][TARGET].mean()), 3),
            },
            "as_fitted": {name: round(value, 4) for name, value in fitted.items()},
            "calibrated": {name: round(value, 4) for name, value in mapped.items()},
            "validation_error": [round(record.error_before, 4), round(record.error_after, 4)],
        }
    print(json.dumps({"max_iter": args.max_iter, "folds": folds}, indent=1))


if __name__ == "__main__":
    main()
