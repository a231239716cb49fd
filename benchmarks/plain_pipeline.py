"""The pipeline's computation as one plain pandas/scikit-learn script: no Dagster, no MLflow.

Same loading, features, candidate comparison and training, evaluation, plots and scoring of
every month as the assets, for the overhead ratio.
Usage: python benchmarks/plain_pipeline.py LANDING_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mlops_assets import landing
from mlops_assets.ml import raw
from mlops_assets.ml.candidates import SearchSpace, default_workers, select_and_train
from mlops_assets.ml.columns import FEATURE_COLUMNS, TARGET
from mlops_assets.ml.evaluation import classification_metrics, diagnostic_plots, feature_importance
from mlops_assets.ml.features import build_features
from mlops_assets.ml.training import temporal_split


def main(landing_dir: Path, out_dir: Path) -> dict[str, float]:
    """Run the whole computation once and return the held-out metrics."""
    flights = raw.concat_typed(
        raw.read_raw_csv(landing.monthly_file(landing_dir, "flights", m), raw.FLIGHTS_SCHEMA)
        for m in landing.landed_months(landing_dir, "flights")
    )
    weather = raw.concat_typed(
        raw.read_raw_csv(landing.monthly_file(landing_dir, "weather", m), raw.WEATHER_SCHEMA)
        for m in landing.landed_months(landing_dir, "weather")
    )
    planes = raw.read_raw_csv(landing_dir / landing.PLANES_FILE, raw.PLANES_SCHEMA)
    features, _ = build_features(flights, weather, planes)
    by_month = {
        landing.month_key(landing.DATA_YEAR, int(number)): rows
        for number, rows in features.groupby("month", sort=True)
    }
    split = temporal_split(by_month)
    outcome = select_and_train(
        {m: by_month[m] for m in split.train_months}, SearchSpace(), default_workers()
    )
    model = outcome.model
    x_holdout = split.holdout[list(FEATURE_COLUMNS)]
    y_holdout = split.holdout[TARGET].to_numpy()
    proba = model.predict_proba(x_holdout)[:, 1]
    metrics = classification_metrics(y_holdout, proba, threshold=0.35)
    importance = feature_importance(model, x_holdout, y_holdout, sample_rows=5000, seed=42)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in diagnostic_plots(y_holdout, proba, 0.35, importance).items():
        (out_dir / name).write_bytes(png)
    for month, rows in by_month.items():
        scored = rows[["month", "sched_dep_utc", "carrier_flight", "tailnum", TARGET]].copy()
        scored["delay_probability"] = model.predict_proba(rows[list(FEATURE_COLUMNS)])[:, 1]
        scored.to_parquet(out_dir / f"predictions-{month}.parquet", index=False)
    return metrics.as_dict()


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
