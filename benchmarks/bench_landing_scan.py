"""One landing_zone_sensor tick with 10,000 files and nothing new (its steady state).

Lands 5,000 months of flights and weather files (10,000 small gzip files), consumes them
once, then times evaluations of the sensor itself against a Dagster instance, with the
cursor it keeps (decoding, scanning and encoding the state). Prints JSON with the medians.
Usage: python benchmarks/bench_landing_scan.py [--files N] [--repeats N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg

from mlops_assets.defs.ingestion.landing_sensor import landing_zone_sensor
from mlops_assets.landing import layout, scan
from mlops_assets.resources import LandingZone


def _land_many(root: Path, files: int) -> None:
    payload = gzip.compress(b"year,month\n2013,1\n", mtime=0)
    for index in range(files // 2):
        month = layout.month_key(1000 + index // 12, index % 12 + 1)
        for table in layout.MONTHLY_TABLES:
            path = layout.monthly_file(root, table, month)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)


def _tick(instance: dg.DagsterInstance, root: Path, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing_zone": LandingZone(path=str(root))}
    )
    result = landing_zone_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def run(files: int, repeats: int) -> dict[str, Any]:
    """Measure and return the figures."""
    with tempfile.TemporaryDirectory() as scratch, dg.instance_for_test() as instance:
        root = Path(scratch)
        _land_many(root, files)
        started = time.perf_counter()
        cursor: str | None = scan.encode_state(scan.scan(root, {}).state)
        first = time.perf_counter() - started
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = _tick(instance, root, cursor)
            timings.append(time.perf_counter() - started)
            if result.run_requests or result.dynamic_partitions_requests:
                raise RuntimeError(f"a steady-state tick requested something: {result}")
            cursor = result.cursor
    return {
        "files": files,
        "repeats": repeats,
        "first_scan_s": round(first, 3),
        "idle_tick_s": round(statistics.median(timings), 3),
        "cursor_kb": round(len(cursor or "") / 1024),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.files, arguments.repeats), indent=2))
