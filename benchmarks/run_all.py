"""Run every benchmark and rewrite the results table of ``docs/performance.md`` (``make bench``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_batches,
    bench_distributed,
    bench_incremental,
    bench_landing_scan,
    bench_pipeline,
    bench_predict,
    bench_scale,
    bench_serving,
    bench_stack_memory,
    bench_startup,
    bench_suite,
    bench_ui_backfill,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "performance.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def render(figures: dict[str, Any]) -> str:
    """The results table for one set of figures."""
    pipeline = figures["pipeline"]
    scan = figures["landing_scan"]
    month = figures["incremental"]
    serving = figures["serving"]
    batch = serving["batch"]
    phases = month["runs"][0]
    rows = [
        (
            "Held-out ROC AUC (December 2013), leak-free features (weather known one hour "
            "after its label), plain script: the pipeline's month-by-month computation, so the "
            "same figure as `mlops-assets materialize`",
            f"{pipeline['holdout_roc_auc']}",
        ),
        (
            "Held-out PR AUC / log loss / Brier",
            f"{pipeline['holdout_pr_auc']} / "
            f"{pipeline['holdout_log_loss']} / {pipeline['holdout_brier']}",
        ),
        (
            "Full materialization, cold CLI process `mlops-assets materialize`, warm stores",
            f"{pipeline['pipeline_s']} s",
        ),
        ("Same computation as a plain script (median)", f"{pipeline['plain_s']} s"),
        (
            "Absolute overhead (difference of the medians)",
            f"{pipeline['pipeline_s'] - pipeline['plain_s']:.2f} s",
        ),
        (
            "Orchestration + tracking overhead ratio (of the medians; median of paired runs)",
            f"{pipeline['ratio']}; {pipeline['paired_ratio_median']} (target <= 1.3)",
        ),
        ("First materialization (creates the stores)", f"{pipeline['first_run_s']} s"),
        (
            f"`landing_zone_sensor` tick, {scan['files']:,} files, nothing new (median of "
            f"{scan['repeats']}; `benchmarks/bench_landing_scan.py`)",
            f"{scan['idle_tick_s']} s (target <= 1 s; first scan {scan['first_scan_s']} s, "
            f"cursor {scan['cursor_kb']} KB)",
        ),
        (
            "Absorb one new month: sensor tick to registered model, cold process "
            f"({_runs(month['repeats'])}; `benchmarks/bench_incremental.py`)",
            f"{month['incremental_s']} s (first run: tick {phases['sensor_tick_s']} s, "
            f"December's run {phases['month_runs_s']} s, retraining run "
            f"{phases['model_run_s']} s)",
        ),
        ("Full rebuild of the 12 months and the model, cold process", f"{month['full_s']} s"),
        ("Absorb one month / full rebuild", f"{month['ratio']} (target <= 0.25)"),
        (
            f"Batch scoring of a full month ({batch['rows']:,} flights of {batch['month']}): "
            f"`scoring_job` run, median of {batch['repeats']} (`benchmarks/score_month.py`)",
            f"{batch['scoring_run_s']} s = {batch['scoring_rows_per_s']:,} rows/s "
            f"(model predict alone: {batch['predict_rows_per_s']:,} rows/s)",
        ),
        *_serving_rows(serving),
        *_stack_memory_rows(figures.get("stack_memory")),
        *_suite_rows(figures.get("suite")),
        *_batch_rows(figures.get("batches")),
        *_ui_backfill_rows(figures.get("ui_backfill")),
        *_predict_rows(figures.get("predict")),
        *_startup_rows(figures["startup"]),
        *_scale_rows(figures["scale"]),
        *_distributed_rows(figures.get("distributed")),
    ]
    lines = [
        f"Measured on {pipeline['machine']} by `make bench` (`benchmarks/run_all.py`); each "
        "figure is the median of the runs its row names (`benchmarks/bench_pipeline.py`, "
        f"{pipeline['repeats']} runs, unless noted).",
        "",
        "| figure | value |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    return "\n".join(lines)


def _serving_rows(serving: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows of ``benchmarks/bench_serving.py``: REST latency and where a request's time goes."""
    rows = []
    for size, target in ((1, 10), (1000, 30)):
        json_body, csv_body = serving[f"rows_{size}"], serving.get(f"rows_{size}_csv")
        rows.append(
            (
                f"REST latency of `make serve`, {size:,}-row request, p50 / p99 over "
                f"{serving['requests']} requests (`benchmarks/bench_serving.py`)",
                f"JSON `dataframe_split` {json_body['p50_ms']} / {json_body['p99_ms']} ms "
                f"(target p50 <= {target} ms)"
                + (f"; CSV {csv_body['p50_ms']} / {csv_body['p99_ms']} ms" if csv_body else ""),
            )
        )
        stages = serving.get(f"in_process_{size}")
        if stages:
            rows.append(
                (
                    f"Where a {size:,}-row request goes, in process, median ms: the server's "
                    "whole invocation; its JSON parsing (and CSV's); the pyfunc's predict "
                    "(schema enforcement + model); the model; scikit-learn's pipeline on the "
                    "same rows (the model before its fast path); the answer's encoding",
                    f"{stages['server_invocation_json']}; {stages['parse_json']} "
                    f"({stages['parse_csv']}); {stages['pyfunc_predict']}; "
                    f"{stages['model_predict']}; {stages['sklearn_pipeline_predict']} "
                    f"(model / pipeline = {stages['model_vs_sklearn_pipeline']}); "
                    f"{stages['encode_answer']}",
                )
            )
    return rows


def _stack_memory_rows(memory: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Rows of ``benchmarks/bench_stack_memory.py``: ``make run``'s resident memory."""
    if memory is None:
        return []
    lean, runner = memory["make_run"], memory["job_runner_on"]
    rows = [
        (
            f"`make run`'s stack idle, resident memory of its processes together "
            f"({_runs(memory['repeats'])}; `benchmarks/bench_stack_memory.py`)",
            f"{lean['rss_mb']:,.0f} MB RSS in {lean['processes']} processes (PSS "
            f"{lean['pss_mb']:,.0f} MB; target <= 1,536) against {runner['rss_mb']:,.0f} MB in "
            f"{runner['processes']} with MLflow's job runner on = {memory['rss_ratio']}",
        )
    ]
    backfill = memory.get("backfill")
    if backfill:
        rows.append(
            (
                f"Same stack during *Materialize all* through {backfill['months_through']}, "
                "peak of the same sum sampled every second",
                f"{backfill['rss_mb']:,.0f} MB RSS (PSS {backfill['pss_mb']:,.0f} MB), "
                f"{backfill['processes']:.0f} processes at most",
            )
        )
    return rows


def _suite_rows(suite: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Rows of ``benchmarks/bench_suite.py``: ``make test`` on a fresh clone."""
    if suite is None:
        return []
    return [
        (
            "`make test` on a fresh clone of HEAD, 2 cores (`benchmarks/bench_suite.py`): "
            "install + browser + `make test` (lint beside pytest)",
            f"{suite['make_test_s'] / 60:.1f} min (target <= 10): {suite['install_s']} + "
            f"{suite['browser_s']} + {suite['test_s']} s (pytest {suite['pytest_s']} s), "
            f"{suite['tests_passed']} tests; CPU time {suite['test_cpu_s']} s "
            f"(at least {suite['test_cpu_s'] / 2:.0f} s on 2 cores)",
        )
    ]


def _batch_rows(batches: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Rows of ``benchmarks/bench_batches.py``: the months' runs by batch size."""
    if batches is None:
        return []
    base = batches["baseline_months_per_run"]
    return [
        (
            f"The year's month runs and scoring runs, {size} month(s) per run "
            f"({_runs(batches['repeats'])}, {batches['workers']} workers; "
            f"`benchmarks/bench_batches.py`)",
            f"{entry['month_runs']} + {entry['scoring_runs']} runs: {entry['ingest_s']} s + "
            f"{entry['score_s']} s = {entry['ingest_ratio']} / {entry['score_ratio']} of "
            f"{base} per run; peak RSS {entry['peak_rss_mb']:,} MB",
        )
        for size, entry in batches["sizes"].items()
    ]


def _ui_backfill_rows(backfill: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Rows of ``benchmarks/bench_ui_backfill.py``: the UI's backfill of everything."""
    if backfill is None:
        return []
    rows = [
        (
            "*Materialize all* -> *All* -> *Launch backfill* over GraphQL against `dagster dev`"
            f" ({backfill['months']} months, {_runs(backfill['repeats'])}; "
            "`benchmarks/bench_ui_backfill.py`)",
            f"{backfill['backfill_s']} s in {backfill['runs']} runs = {backfill['ratio']}x the "
            f"plain script ({backfill['plain_s']} s); runs executing {backfill['executing_s']} s "
            f"= {backfill['executing_ratio']}x (target <= 1.5); no run of the backfill existed "
            f"for {backfill['no_run_unfinished_s']} s; stack RSS "
            f"{backfill['stack_rss_mb']:,.0f} MB",
        )
    ]
    floor = backfill.get("floor")
    if floor:
        rows.append(
            (
                "Its floor: the same backfill of the same graph with no-op bodies "
                "(`benchmarks/noop_location.py`)",
                f"{floor['backfill_server_s']} s in {floor['runs']} runs over {floor['levels']} "
                f"levels of dependencies; runs executing {floor['executing_s']} s, a no-op run "
                f"{floor['run_s_median']} s from start to end",
            )
        )
    return rows


def _predict_rows(predict: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Rows of ``benchmarks/bench_predict.py``: where a month's predict time goes."""
    if predict is None:
        return []
    ms, rate = predict["ms"], predict["rows_per_s"]
    return [
        (
            f"Served `predict` on {predict['rows']:,} rows of {predict['month']}, median of "
            f"{predict['repeats']} (`benchmarks/bench_predict.py`)",
            f"{ms['served_pyfunc_predict']} ms = {rate['served_pyfunc_predict']:,} rows/s "
            f"(target 500,000); trees {ms['trees_1_thread']} ms on 1 thread, "
            f"{ms['trees_all_threads']} ms on all; encodings {ms['ordinal_encoding']} + "
            f"{ms['booster_reencoding']} ms; read-score-store step "
            f"{rate['scoring_step']:,} rows/s (target 200,000)",
        )
    ]


def _startup_rows(startup: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows of ``benchmarks/bench_startup.py``: code-location load and per-step overhead."""
    heavy = ", ".join(startup["heavy_modules_loaded"]) or "none"
    return [
        (
            f"Code-location load: a new process imports and resolves `mlops_assets.definitions`"
            f" as the code server does, median of {startup['repeats']} "
            "(`benchmarks/bench_startup.py`)",
            f"{startup['load_s']} s (target <= 2 s; whole process {startup['process_s']} s; "
            f"`dagster definitions validate` {startup['validate_s']} s; heavy libraries "
            f"loaded: {heavy})",
        ),
        (
            "Dagster's floor: a one-asset code location loaded the same way, in the same run; "
            "what this project adds to it (median of the paired differences)",
            f"{startup['dagster_floor_load_s']} s; +{startup['load_over_floor_s']} s",
        ),
        (
            "Orchestration overhead per step: an empty 10-step chain against a 1-step one, "
            "in-process executor, SQLite instance",
            f"{startup['per_step_s']} s (target <= 0.3 s; {startup['run_10_steps_s']} s for 10 "
            f"steps, {startup['run_1_step_s']} s for 1)",
        ),
    ]


def _runs(repeats: int) -> str:
    return f"median of {repeats}" if repeats > 1 else "one run"


def _scale_rows(scale: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows of ``benchmarks/bench_scale.py``: cold end-to-end runs at 1x, 10x and 30x."""
    rows = []
    for name, entry in scale.items():
        ratio = entry.get("time_ratio_to_1x")
        versus = f" = {ratio}x the 1x time" + (" (target <= 12)" if name == "10x" else "")
        rows.append(
            (
                f"End-to-end at {name} ({entry['flights']:,} flights): cold `mlops-assets "
                f"materialize`, {_runs(entry['repeats'])} (`benchmarks/bench_scale.py`)",
                f"{entry['seconds']} s{versus if ratio else ''}; peak RSS of the largest process "
                f"{entry['peak_rss_mb']:,} MB (target < 4,096); {entry['train_rows']:,} training "
                f"rows; held-out ROC AUC {entry['holdout_roc_auc']}",
            )
        )
    return rows


def _distributed_rows(distributed: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Rows of ``benchmarks/bench_distributed.py``: the year as runs, in-process and on
    Celery workers."""
    if distributed is None:
        return []
    batches = distributed.get("batches")
    shape = (
        f"{2 * len(batches) + 1} runs (the months in {len(batches)} batches at once, the model, "
        "the scoring in as many batches)"
        if batches
        else "26 runs (the planes, 12 months four at a time, the model, 12 scorings)"
    )
    runs = (
        f"The year as {shape}, {_runs(distributed['repeats'])} (`benchmarks/bench_distributed.py`)"
    )
    return [
        (f"{runs}: in-process default (SQLite)", f"{distributed['in_process_s']} s"),
        (
            "Same runs, production profile (PostgreSQL, tracking server), 1 Celery worker",
            f"{distributed['celery_1_worker_s']} s",
        ),
        (
            "Same runs, 2 Celery workers (speed-up over 1 worker)",
            f"{distributed['celery_2_workers_s']} s ({distributed['speed_up_2_over_1']}x)",
        ),
    ]


def write_results(figures: dict[str, Any], path: Path = RESULTS) -> None:
    """Replace the results block of ``path`` (``docs/performance.md``) with a table of
    ``figures``, leaving everything outside the block as it was.

    Args:
        figures: the measured figures, as ``benchmarks/results/pipeline.json`` holds them.
        path: the Markdown file holding exactly one block between ``START`` and ``END``.

    Raises:
        ValueError: when the file does not hold exactly one such block.
    """
    text = path.read_text()
    pattern = re.compile(f"{re.escape(START)}.*?{re.escape(END)}", flags=re.S)
    found = len(pattern.findall(text))
    if found != 1:
        raise ValueError(f"{path} holds {found} results blocks ({START} ... {END}); expected 1")
    block = f"{START}\n{render(figures)}\n{END}"
    path.write_text(pattern.sub(lambda _: block, text))


BENCHMARKS = {
    "startup": lambda: bench_startup.run(repeats=5),
    "scale": lambda: bench_scale.run([1, 10, 30], {1: 3, 10: 1, 30: 1}),
    "pipeline": lambda: bench_pipeline.run(repeats=3),
    "landing_scan": lambda: bench_landing_scan.run(files=10_000, repeats=7),
    "serving": lambda: bench_serving.run(requests=200),
    "incremental": lambda: bench_incremental.run(repeats=3),
    "distributed": lambda: bench_distributed.run(repeats=1),
    "batches": lambda: bench_batches.run([12, 6, 3, 1], repeats=3, workers=2),
    "ui_backfill": lambda: bench_ui_backfill.run(repeats=1, with_floor=True),
    "predict": lambda: bench_predict.run(Path("data/landing"), repeats=7),
    "stack_memory": lambda: bench_stack_memory.run(3, 20.0, "2013-03", 3600.0),
    "suite": bench_suite.run,
}


def main(names: list[str]) -> None:
    """Measure, save the raw figures after each benchmark, and rewrite the results block.

    With names (e.g. ``serving``), only those benchmarks run again; the other figures are
    kept from ``benchmarks/results/pipeline.json``.
    """
    results = ROOT / "benchmarks" / "results" / "pipeline.json"
    unknown = set(names) - set(BENCHMARKS)
    if unknown or (names and not results.exists()):
        raise SystemExit(f"run all benchmarks first; known names: {sorted(BENCHMARKS)}")
    figures = json.loads(results.read_text()) if names else {}
    results.parent.mkdir(exist_ok=True)
    for name, measure in BENCHMARKS.items():
        if not names or name in names:
            figures[name] = measure()
            results.write_text(json.dumps(figures, indent=2))
    write_results(figures)
    print(render(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
