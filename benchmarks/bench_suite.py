"""``make test`` on a fresh clone of HEAD: what a new contributor and CI wait for.

Clones the repository's HEAD into a scratch folder (uv's download cache is shared, as on a
machine that installed once) and runs, timed: ``make install`` (uv and the locked
environment), ``make browser`` (Chromium, when missing), then ``make test`` itself (ruff and
mypy from a cold cache beside the pytest command), whose summary line gives the tests
passed. Prints JSON.
Usage: python -m benchmarks.bench_suite
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [".venv/bin/pytest", "-n", "3", "--dist", "loadfile", "--no-loadscope-reorder"]


def _timed(command: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        )
    return elapsed, done.stdout


def run() -> dict[str, Any]:
    """Measure and return the figures."""
    makefile = (ROOT / "Makefile").read_text()
    if " ".join(PYTEST[1:]) not in makefile:
        raise RuntimeError(f"make test no longer runs {' '.join(PYTEST)}: update this benchmark")
    with tempfile.TemporaryDirectory() as scratch:
        clone = Path(scratch) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        figures: dict[str, Any] = {}
        for phase in ("install", "browser"):
            figures[f"{phase}_s"] = round(_timed(["make", phase], clone)[0], 1)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        test_s, out = _timed(["make", "test"], clone)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures["test_s"] = round(test_s, 1)
        # CPU time of make test and of every process it started and reaped (lint, pytest,
        # servers, browsers, runs): on 2 cores, half of it is the least the suite can take.
        figures["test_cpu_s"] = round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1
        )
        summary = re.search(r"^=* ?(\d+) passed.* in ([\d.]+)s", out, re.MULTILINE)
        if summary is None:
            raise RuntimeError(f"no pytest summary in make test's output:\n{out[-4000:]}")
        figures["tests_passed"] = int(summary.group(1))
        figures["pytest_s"] = float(summary.group(2))
        figures["make_test_s"] = round(
            sum(figures[k] for k in ("install_s", "browser_s", "test_s")), 1
        )
        figures["slowest"] = [
            line for line in out.splitlines() if re.match(r"^\d+\.\d+s (call|setup)", line)
        ][:15]
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
