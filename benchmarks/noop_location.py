"""The project's asset graph with bodies that do nothing: the floor of a backfill through the
daemon (``benchmarks/bench_ui_backfill.py --floor``).

Same keys, same edges, the same dynamic ``month`` partitions and ``BackfillPolicy``
(``MLOPS_MONTHS_PER_RUN`` months per run) on the same assets, unpartitioned model assets
between them, the local profile's in-process executor; every body returns nothing (no
storage, no MLflow). A backfill of everything here takes the run shapes and dependency
levels of the real one, so its time is what the daemon, the run queue and each run's process
cost without any work.
"""

from __future__ import annotations

import dagster as dg

from mlops_assets.runtime import settings

MONTHS = dg.DynamicPartitionsDefinition(name="month")
BATCHES = dg.BackfillPolicy.multi_run(settings.months_per_run())


def _month(name: str, deps: list[str]) -> dg.AssetsDefinition:
    @dg.asset(name=name, deps=deps, partitions_def=MONTHS, backfill_policy=BATCHES)
    def _noop() -> None:
        """Nothing."""

    return _noop


def _model(name: str, deps: list[str]) -> dg.AssetsDefinition:
    @dg.asset(name=name, deps=deps)
    def _noop() -> None:
        """Nothing."""

    return _noop


RAW = ["raw_flights", "raw_weather", "raw_planes"]

defs = dg.Definitions(
    assets=[
        *(_month(name, []) for name in RAW),
        _month("flight_features", RAW),
        _model("trained_model", ["flight_features"]),
        _model("model_evaluation", ["flight_features", "trained_model"]),
        _model("registered_model", ["trained_model", "model_evaluation"]),
        _month("flight_delay_predictions", ["flight_features", "registered_model"]),
        _month("feature_drift", ["flight_features", "registered_model"]),
    ],
    executor=dg.in_process_executor,
)
