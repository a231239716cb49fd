"""Scoring: batch throughput over a full month, and REST latency of the served champion.

Lands three months of the real data in a scratch folder and materializes them, the model and
the predictions (``mlops-assets materialize``). Times ``scoring_job`` on March, a full month
(``score_month.py``). Then, where a request's time goes, in this process on the same rows
(1 and 1,000 of March's flights), median of ``--requests`` interleaved rounds: MLflow's scoring
server's parsing of the JSON body (``_parse_json_data``: ``json.loads`` twice and a cast of
every column to the signature's type) and of the same rows as CSV, the pyfunc's ``predict``
(MLflow's schema enforcement, then the model), the model alone, scikit-learn's own pipeline on
the same rows (what the served model ran before its fast path, the baseline of the ratio),
and the encoding of the answer. Then starts ``mlflow models serve`` for ``@champion`` on a
free loopback port (as ``make serve`` does), warms it up, and times ``--requests`` requests of
each size and body (``dataframe_split`` JSON, CSV) from a client on loopback. Prints JSON.
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
from benchmarks.bench_predict import medians
from mlops_assets.landing import layout
from mlops_assets.ml.columns import FEATURE_COLUMNS
from mlops_assets.runtime import settings
from mlops_assets_tests.stack import model_server

ROOT = Path(__file__).resolve().parent.parent


def _post(url: str, body: bytes, content_type: str = "application/json") -> float:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": content_type}
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


def breakdown(model_uri: str, rows: pd.DataFrame, body: bytes, repeats: int) -> dict[str, float]:
    """Where a request's time goes, in process: each stage's median in ms."""
    import io

    import mlflow
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(model_uri)
    schema = model.metadata.get_input_schema()
    parsed = scoring_server._parse_json_data(body, model.metadata, schema).data
    served = model.unwrap_python_model()
    pipeline = served.classifier
    csv = rows.to_csv(index=False)
    answer = model.predict(parsed)
    stages = {
        "server_invocation_json": lambda: scoring_server.invocations(
            body, "application/json", model, schema
        ),
        "parse_json": lambda: scoring_server._parse_json_data(body, model.metadata, schema),
        "parse_csv": lambda: scoring_server.parse_csv_input(io.StringIO(csv), schema),
        "pyfunc_predict": lambda: model.predict(parsed),
        "model_predict": lambda: served.predict(None, parsed),
        "sklearn_pipeline_predict": lambda: pipeline.predict_proba(parsed[served.columns]),
        "encode_answer": lambda: scoring_server.predictions_to_json(answer, io.StringIO()),
    }
    figures = {name: round(seconds * 1000, 2) for name, seconds in medians(stages, repeats).items()}
    figures["model_vs_sklearn_pipeline"] = round(
        figures["model_predict"] / figures["sklearn_pipeline_predict"], 3
    )
    return figures


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
        champion = "models:/flight_delay_classifier@champion"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        for size, body in bodies.items():
            figures[f"in_process_{size}"] = breakdown(champion, rows.head(size), body, requests)
        csv = {size: rows.head(size).to_csv(index=False).encode() for size in bodies}
        with model_server(champion, env, Path(scratch) / "logs") as url:
            for size, body in bodies.items():
                for name, payload, content_type in (
                    ("", body, "application/json"),
                    ("_csv", csv[size], "text/csv"),
                ):
                    for _ in range(10):
                        _post(url, payload, content_type)  # warm-up
                    times = [_post(url, payload, content_type) for _ in range(requests)]
                    figures[f"rows_{size}{name}"] = _percentiles(times)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    print(json.dumps(run(parser.parse_args().requests), indent=2))
