"""One landing-zone scan with 10,000 files and nothing new (the sensor's steady state).

Lands 5,000 months of flights and weather files (10,000 small gzip files), consumes them
once, then times a scan that finds nothing new, including decoding and encoding the state
that the sensor keeps as its cursor. Prints JSON with the median over repetitions.
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

from mlops_assets import landing, landing_scan


def _land_many(root: Path, files: int) -> None:
    payload = gzip.compress(b"year,month\n2013,1\n", mtime=0)
    for index in range(files // 2):
        month = landing.month_key(1000 + index // 12, index % 12 + 1)
        for table in landing.MONTHLY_TABLES:
            path = landing.monthly_file(root, table, month)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)


def run(files: int, repeats: int) -> dict[str, Any]:
    """Measure and return the figures."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        _land_many(root, files)
        started = time.perf_counter()
        cursor = landing_scan.encode_state(landing_scan.scan(root, {}).state)
        first = time.perf_counter() - started
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = landing_scan.scan(root, landing_scan.decode_state(cursor))
            cursor = landing_scan.encode_state(result.state)
            timings.append(time.perf_counter() - started)
            if result.changed or result.files_read:
                raise RuntimeError("a steady-state scan read or reported files")
    return {
        "files": files,
        "repeats": repeats,
        "first_scan_s": round(first, 3),
        "idle_scan_s": round(statistics.median(timings), 3),
        "cursor_kb": round(len(cursor) / 1024),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.files, arguments.repeats), indent=2))
