"""End-to-end time and peak memory at 1x, 10x and 30x the real flights.

For each scale K, ``mlops-assets seed --scale K`` writes a landing zone once (kept under
``data/bench/scale-K``; ``--scale 1`` is the real data). Each repetition then runs a cold
``mlops-assets materialize`` (the months in batches, the model, the scoring in batches) on
a new Dagster home and MLflow store, as ``make materialize`` does on a first day.
Measured: the wall time, the peak RSS of the largest single process of the run (the command
and every process it waited for: the month workers), and each asset's step
time summed over the runs (from the Dagster event log), to find what grows faster than
the data. Prints JSON with the medians and the ratios to 1x.
Usage: python -m benchmarks.bench_scale [--scales 1 10 30] [--repeats N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import scratch_project
from mlops_assets.landing import layout
from mlops_assets.runtime import settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def measured(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``command``; its wall time and the peak RSS (MB) of its largest process.

    ``wait4`` reports the child's own peak and those of the descendants it waited for (on
    Linux, ``ru_maxrss`` is the largest single process, not a sum).

    Raises:
        RuntimeError: With the end of the output, when the command fails.
    """
    start = time.perf_counter()
    child = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{command[1]} failed:\n{output.decode()[-4000:]}")
    return elapsed, round(usage.ru_maxrss / 1024)


def landing_zone(scale: int) -> tuple[Path, int]:
    """The scale's landing zone (written once) and its number of flights."""
    root = settings.data_dir() / "bench" / f"scale-{scale}" / "landing"
    if layout.is_empty(root):
        subprocess.run(
            [str(BIN / "mlops-assets"), "seed", "--scale", str(scale), "--landing", str(root)],
            check=True,
            cwd=ROOT,
        )
    flights = 0
    for month in layout.landed_months(root, "flights"):
        with gzip.open(layout.monthly_file(root, "flights", month), "rb") as lines:
            flights += sum(1 for _ in lines) - 1  # the header
    return root, flights


def step_seconds(home: Path) -> dict[str, float]:
    """Each step's time summed over every run recorded in the Dagster home."""
    import dagster as dg

    totals: dict[str, float] = defaultdict(float)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            for step in instance.get_run_step_stats(run.run_id):
                if step.start_time is not None and step.end_time is not None:
                    totals[step.step_key] += step.end_time - step.start_time
    return {key: round(value, 2) for key, value in sorted(totals.items())}


def months_per_run(scale: int) -> int:
    """The batch size a deployment at ``scale`` times 2013's flights would set (see settings).

    A run holds its batch's frames: six months at 1x, one month from 6x on, so that a batch
    never holds much more than six of 2013's months.
    """
    return max(1, settings.DEFAULT_MONTHS_PER_RUN // scale)


def _repetition(source: Path, scale: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        data, env = scratch_project(Path(scratch), source)
        env[settings.MONTHS_PER_RUN_ENV] = str(months_per_run(scale))
        seconds, rss = measured([str(BIN / "mlops-assets"), "materialize"], env)
        evaluation = json.loads((data / "lake" / "model_evaluation.json").read_text())
        model = json.loads((data / "lake" / "trained_model.json").read_text())
        return {
            "seconds": seconds,
            "peak_rss_mb": rss,
            "steps_s": step_seconds(Path(env["DAGSTER_HOME"])),
            "train_rows": model["train_rows"],
            "holdout_roc_auc": round(evaluation["metrics"]["roc_auc"], 4),
        }


def run(scales: list[int], repeats: dict[int, int]) -> dict[str, Any]:
    """Measure every scale; ``repeats`` gives each scale's number of repetitions."""
    figures: dict[str, Any] = {}
    for scale in scales:
        source, flights = landing_zone(scale)
        runs = [_repetition(source, scale) for _ in range(repeats.get(scale, 1))]
        seconds = statistics.median(r["seconds"] for r in runs)
        steps = {
            key: round(statistics.median(r["steps_s"].get(key, 0.0) for r in runs), 2)
            for key in runs[0]["steps_s"]
        }
        figures[f"{scale}x"] = {
            "flights": flights,
            "repeats": len(runs),
            "seconds": round(seconds, 1),
            "runs_s": [round(r["seconds"], 1) for r in runs],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "train_rows": runs[0]["train_rows"],
            "holdout_roc_auc": runs[0]["holdout_roc_auc"],
            "steps_s": steps,
        }
    if "1x" in figures:
        base = figures["1x"]
        for scale in scales[1:]:
            entry = figures[f"{scale}x"]
            entry["time_ratio_to_1x"] = round(entry["seconds"] / base["seconds"], 2)
            entry["step_ratios_to_1x"] = {
                key: round(value / base["steps_s"][key], 1)
                for key, value in entry["steps_s"].items()
                if base["steps_s"].get(key)
            }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(args.scales, dict.fromkeys(args.scales, args.repeats)), indent=2))
