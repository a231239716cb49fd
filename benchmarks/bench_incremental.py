"""Absorbing one new month against a full rebuild of all months, cold processes, same stores.

Each repetition starts from a new Dagster home and MLflow store holding January to November
(materialized by ``mlops-assets materialize``) and a sensor cursor over them. December then
lands, and two cold processes are timed: ``python -m benchmarks.absorb_month`` (sensor tick,
December's run, the automation's retraining) and ``mlops-assets materialize`` (the full
rebuild of the twelve months and the model). Prints JSON with the medians and their ratio.
Usage: python -m benchmarks.bench_incremental [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import local_environment, timed
from mlops_assets.landing import layout
from mlops_assets.runtime import settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NEW_MONTH = "2013-12"


def _land(source: Path, target: Path, months: list[str]) -> None:
    for month in months:
        for table in layout.MONTHLY_TABLES:
            path = layout.monthly_file(target, table, month)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.part")
            shutil.copyfile(layout.monthly_file(source, table, month), temporary)
            temporary.replace(path)


def _repetition(source: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        data, home = Path(scratch) / "data", Path(scratch) / "home"
        zone = data / "landing"
        zone.mkdir(parents=True)
        home.mkdir()
        shutil.copy(ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
        shutil.copyfile(source / layout.PLANES_FILE, zone / layout.PLANES_FILE)
        _land(source, zone, [layout.month_key(2013, m) for m in range(1, 12)])
        env = local_environment(data, home)
        absorb = [str(BIN / "python"), "-m", "benchmarks.absorb_month", str(Path(scratch) / "c")]
        timed([str(BIN / "mlops-assets"), "materialize"], env)
        _, primed = timed(absorb, env)  # the sensor's first tick: everything is materialized
        if json.loads(primed)["ran"]:
            raise RuntimeError(f"priming tick ran something: {primed}")
        _land(source, zone, [NEW_MONTH])
        incremental, out = timed(absorb, env)
        absorbed = json.loads(out)
        expected = [
            f"month_job[{NEW_MONTH}]",
            "retrain_job[model_evaluation,registered_model,trained_model]",
        ]
        if absorbed["ran"] != expected:
            raise RuntimeError(f"absorbing {NEW_MONTH} ran {absorbed['ran']}")
        full, _ = timed([str(BIN / "mlops-assets"), "materialize"], env)
    return {"incremental_s": incremental, "full_s": full, "phases": absorbed}


def run(repeats: int) -> dict[str, Any]:
    """Measure and return the figures."""
    source = settings.landing_dir()
    if layout.is_empty(source):
        layout.seed_landing_zone(source)
    reps = [_repetition(source) for _ in range(repeats)]
    incremental = statistics.median(r["incremental_s"] for r in reps)
    full = statistics.median(r["full_s"] for r in reps)
    return {
        "repeats": repeats,
        "incremental_s": round(incremental, 2),
        "full_s": round(full, 2),
        "ratio": round(incremental / full, 3),
        "runs": [
            {
                "incremental_s": round(r["incremental_s"], 2),
                "full_s": round(r["full_s"], 2),
                **r["phases"],
            }
            for r in reps
        ],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    print(json.dumps(run(parser.parse_args().repeats), indent=2))
