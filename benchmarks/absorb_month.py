"""Absorb whatever landed, as the daemon does, in one cold process (for bench_incremental).

One landing_zone_sensor tick (cursor read from and written to CURSOR_FILE), the partitions
and runs it requests, then the automation evaluation (its time apart) and the runs it
requests. Prints JSON: what ran and how long each phase took.
Usage: python -m benchmarks.absorb_month CURSOR_FILE
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg

from mlops_assets.definitions import defs
from mlops_assets.defs.ingestion.landing_sensor import landing_zone_sensor
from mlops_assets.resources import LandingZone


def absorb(instance: dg.DagsterInstance, cursor_file: Path) -> dict[str, Any]:
    """Tick the sensor, run what it asks, then let the automation retrain; return the log."""
    phases: dict[str, float] = {}
    started = time.perf_counter()
    # The daemon evaluates automation continuously: this is its tick before the data lands.
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    cursor = cursor_file.read_text() if cursor_file.exists() else None
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing_zone": LandingZone()}
    )
    tick = landing_zone_sensor(context)
    assert isinstance(tick, dg.SensorResult)
    phases["sensor_tick_s"] = time.perf_counter() - started
    for added in tick.dynamic_partitions_requests or []:
        assert isinstance(added, dg.AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))
    ran: list[str] = []
    for request in tick.run_requests or []:
        assert request.job_name is not None
        result = defs.resolve_job_def(request.job_name).execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags
        )
        assert result.success
        ran.append(f"{request.job_name}[{request.partition_key}]")
    phases["month_runs_s"] = time.perf_counter() - started - sum(phases.values())
    automation = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=settled.cursor
    )
    keys = [
        key
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        if automation.get_num_requested(key)
    ]
    phases["automation_s"] = time.perf_counter() - started - sum(phases.values())
    if keys:
        result = defs.resolve_job_def("retrain_job").execute_in_process(
            instance=instance, asset_selection=keys
        )
        assert result.success
        ran.append("retrain_job[" + ",".join(sorted(k.to_user_string() for k in keys)) + "]")
    phases["model_run_s"] = time.perf_counter() - started - sum(phases.values())
    if tick.cursor:
        cursor_file.write_text(tick.cursor)
    return {"ran": ran, **{name: round(value, 2) for name, value in phases.items()}}


if __name__ == "__main__":
    with dg.DagsterInstance.get() as dagster_instance:
        print(json.dumps(absorb(dagster_instance, Path(sys.argv[1]))))
