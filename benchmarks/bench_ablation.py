"""What each feature group adds to the December held-out ROC AUC (the ablation table).

Builds the year's features from the landing zone month by month, as the partitions do
(``mlops_assets.ml.landed.month_features``), then fits one classifier per variant on January to
November and scores December:

- ``all``: every feature;
- ``all - GROUP``: every feature but one group of arrival features;
- ``base``: the features before the arrival groups (weather, departures, plane, schedule);
- ``base + GROUP``: the base and one group;
- ``all - both histories``: every feature but the two 28-day histories.

A left-out feature is dropped from the model's columns. Every variant is the same boosting
configuration (``TrainingSettings`` defaults but ``--max-iter``, as ``build_classifier``
builds it), single-threaded so that variants do not compete for the cores. Also prints each
group's coverage (the share of December rows where it is known). AUCs are deterministic;
the run takes a few minutes. Prints JSON.
Usage: python -m benchmarks.bench_ablation [--landing DIR] [--max-iter N]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
from sklearn.metrics import roc_auc_score

from mlops_assets.landing import layout
from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.landed import month_features
from mlops_assets.ml.training import (
    TrainingSettings,
    build_classifier,
    compact_features,
)

GROUPS: dict[str, tuple[str, ...]] = {
    "destination landings": (
        "dest_recent_arr_delay",
        "dest_recent_arr_gain",
        "minutes_since_dest_landing",
    ),
    "previous leg's arrival": (
        "tail_prev_arr_delay",
        "tail_prev_arr_exact",
        "tail_turn_slack_minutes",
    ),
    "flight number history": (
        "flight_hist_arr_delay",
        "flight_hist_delayed_share",
        "flight_hist_flights",
    ),
    "route and hour history": (
        "route_hour_hist_arr_delay",
        "route_hour_hist_delayed_share",
        "route_hour_hist_flights",
    ),
}


def december_auc(
    train: pd.DataFrame, holdout: pd.DataFrame, dropped: set[str], max_iter: int
) -> float:
    """Held-out ROC AUC of the classifier fitted without the ``dropped`` features."""
    model = build_classifier(TrainingSettings(max_iter=max_iter))
    encode, classify = model.named_steps["encode"], model.named_steps["classify"]
    categorical, numeric = encode.transformers[0], encode.transformers[1]
    kept = [column for column in numeric[2] if column not in dropped]
    encode.set_params(transformers=[categorical, (numeric[0], numeric[1], kept)])
    classify.set_params(categorical_features=[True] * len(categorical[2]) + [False] * len(kept))
    columns = [column for column in FEATURE_COLUMNS if column not in dropped]
    model.fit(train[columns], train[TARGET])
    return float(roc_auc_score(holdout[TARGET], model.predict_proba(holdout[columns])[:, 1]))


def main() -> None:
    """Print the ablation table as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, default=Path("data/landing"))
    parser.add_argument("--max-iter", type=int, default=100)
    args = parser.parse_args()
    months = layout.landed_months(args.landing, "flights")
    by_month = month_features(args.landing, months)
    holdout_month = months[-1]
    train = pd.concat([compact_features(by_month[m]) for m in months[:-1]], ignore_index=True)
    holdout = compact_features(by_month[holdout_month])
    every = {column for group in GROUPS.values() for column in group}
    variants: dict[str, set[str]] = {"all": set(), "base": every}
    for name, group in GROUPS.items():
        variants[f"all - {name}"] = set(group)
        variants[f"base + {name}"] = every - set(group)
    histories = set(GROUPS["flight number history"] + GROUPS["route and hour history"])
    variants["all - both histories"] = histories
    aucs = {
        name: round(december_auc(train, holdout, dropped, args.max_iter), 4)
        for name, dropped in variants.items()
    }
    coverage = {
        name: round(float(holdout[list(group)].notna().any(axis=1).mean()), 3)
        for name, group in GROUPS.items()
    }
    print(
        json.dumps(
            {
                "holdout_month": holdout_month,
                "max_iter": args.max_iter,
                "roc_auc": aucs,
                "coverage": coverage,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
