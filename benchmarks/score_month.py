"""Batch scoring throughput of one month, run inside a prepared project (env: data, home).

Times ``scoring_job`` for the month (load @champion, score every flight, write the
partition, log the MLflow run) and, apart, the model's ``predict`` alone on the same rows.
Prints JSON. Usage: python -m benchmarks.score_month MONTH REPEATS
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import dagster as dg
import mlflow
import pandas as pd

from mlops_assets.definitions import defs
from mlops_assets.ml.columns import FEATURE_COLUMNS
from mlops_assets.runtime import settings


def main(month: str, repeats: int) -> dict[str, float | str]:
    """Measure and return the figures."""
    job = defs.resolve_job_def("scoring_job")
    runs = []
    with dg.DagsterInstance.get() as instance:
        for _ in range(repeats + 1):  # the first run warms the imports and the stores up
            started = time.perf_counter()
            result = job.execute_in_process(instance=instance, partition_key=month)
            runs.append(time.perf_counter() - started)
            if not result.success:
                raise RuntimeError(f"scoring_job failed for {month}")
    features = pd.read_parquet(settings.lake_dir() / "flight_features" / f"{month}.parquet")
    rows = features[list(FEATURE_COLUMNS)]
    mlflow.set_tracking_uri(settings.default_tracking_uri())
    model = mlflow.pyfunc.load_model("models:/flight_delay_classifier@champion")
    predicts = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        model.predict(rows)
        predicts.append(time.perf_counter() - started)
    run_s, predict_s = statistics.median(runs[1:]), statistics.median(predicts[1:])
    return {
        "month": month,
        "rows": len(rows),
        "repeats": repeats,
        "scoring_run_s": round(run_s, 3),
        "scoring_rows_per_s": round(len(rows) / run_s),
        "predict_s": round(predict_s, 3),
        "predict_rows_per_s": round(len(rows) / predict_s),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
