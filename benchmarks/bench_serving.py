"""Scoring: batch throughput over a full month, and REST latency of the served champion.

Lands three months of the real data in a scratch folder and materializes them, the model and
the predictions (``mlops-assets materialize``). Times ``scoring_job`` on March, a full month
(``score_month.py``). Then starts ``mlflow models serve`` for ``@champion`` on a free
loopback port (as ``make serve`` does), warms it up, and times a fixed number of
``dataframe_split`` requests of each size from a client on loopback. Prints JSON.
Usage: python -m benchmarks.bench_serving [--requests N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.bench_pipeline import timed
from mlops_assets.landing import layout
from mlops_assets.ml.columns import FEATURE_COLUMNS
from mlops_assets.runtime import settings
from mlops_assets_tests.stack import model_server

ROOT = Path(__file__).resolve().parent.parent


def _post(url: str, body: bytes) -> float:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
    return time.perf_counter() - started


def _percentiles(times: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 1), "p99_ms": round(cuts[98] * 1000, 1)}


def run(requests: int) -> dict[str, Any]:
    """Measure and return the figures."""
    source = settings.landing_dir()
    if layout.is_empty(source):
        layout.seed_landing_zone(source)
    with tempfile.TemporaryDirectory() as scratch:
        data, home = Path(scratch) / "data", Path(scratch) / "home"
        home.mkdir()
        layout.seed_landing_zone(data / "landing", "2013-03")
        shutil.copy(ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
        uri = f"sqlite:///{data / 'mlflow.db'}"
        env = {**os.environ, "MLOPS_DATA_DIR": str(data), "DAGSTER_HOME": str(home)}
        env["MLFLOW_TRACKING_URI"] = uri
        timed([str(Path(sys.executable).parent / "mlops-assets"), "materialize"], env)
        _, out = timed([sys.executable, "-m", "benchmarks.score_month", "2013-03", "5"], env)
        batch = json.loads(out.strip().splitlines()[-1])
        rows = pd.read_parquet(data / "lake" / "flight_features" / "2013-03.parquet")
        rows = rows[list(FEATURE_COLUMNS)]
        bodies = {
            size: json.dumps(
                {
                    "dataframe_split": json.loads(
                        rows.head(size).to_json(orient="split", index=False, double_precision=15)
                    )
                }
            ).encode()
            for size in (1, 1000)
        }
        figures: dict[str, Any] = {"requests": requests, "batch": batch}
        with model_server(
            "models:/flight_delay_classifier@champion", env, Path(scratch) / "logs"
        ) as url:
            for size, body in bodies.items():
                for _ in range(10):
                    _post(url, body)  # warm-up
                times = [_post(url, body) for _ in range(requests)]
                figures[f"rows_{size}"] = _percentiles(times)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    print(json.dumps(run(parser.parse_args().requests), indent=2))
