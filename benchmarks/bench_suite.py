"""``make test`` on a fresh clone of HEAD, phase by phase: what a new contributor and CI wait for.

Clones the repository's HEAD into a scratch folder (uv's download cache is shared, as on a
machine that installed once) and runs, timed, the steps ``make test`` chains: ``make
install`` (uv and the locked environment), ``make lint`` (ruff format, ruff lint, mypy from a
cold cache), ``make browser`` (Chromium, when missing) and the pytest command of ``make
test``, whose summary line gives the tests passed. Prints JSON.
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
PYTEST = [".venv/bin/pytest", "-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]


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
        for phase in ("install", "lint", "browser"):
            figures[f"{phase}_s"] = round(_timed(["make", phase], clone)[0], 1)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        pytest_s, out = _timed(PYTEST, clone)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures["pytest_s"] = round(pytest_s, 1)
        # CPU time of pytest and of every process it started and reaped (servers, browsers,
        # runs): on 2 cores, half of it is the least the suite can take.
        figures["pytest_cpu_s"] = round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1
        )
        summary = re.search(r"(\d+) passed", out.splitlines()[-1])
        figures["tests_passed"] = int(summary.group(1)) if summary else None
        phases = ("install_s", "lint_s", "browser_s", "pytest_s")
        figures["make_test_s"] = round(sum(figures[k] for k in phases), 1)
        figures["slowest"] = [
            line for line in out.splitlines() if re.match(r"^\d+\.\d+s (call|setup)", line)
        ][:15]
    return figures


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
