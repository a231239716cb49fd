"""Code-location load time and per-step orchestration overhead, each in fresh processes.

Load: a new ``python -c`` loads ``mlops_assets.definitions`` the way ``dagster code-server``
does at start (``dagster._grpc.server.LoadedRepositories`` in 1.13.27: the module's
Definitions found and resolved, ``ReconstructableRepository.get_definition()``,
``load_all_definitions()``; Dagster's loader itself imports SQLAlchemy and Alembic, through
``dagster._utils.test``). The webserver and the daemon reach the code location through that
server, and every run process (whose steps the local profile's in-process executor runs) pays
the same load. Timed inside the process from its first statement (``load_s``; with the
CPU seconds of the process by then, ``load_cpu_s``, which another job on the machine inflates
less) and as the whole process (``process_s``: interpreter start and exit too), with the heavy
libraries the load left in ``sys.modules``; then ``dagster definitions validate -w
workspace.yaml`` (CLI, instance and the location's snapshot as well). One unmeasured load first
(bytecode, page cache). Each repetition also loads Dagster's floor, a one-asset code location,
the same way: ``load_over_floor_s`` is what this project adds to what Dagster itself costs.

Per step: a chain of 10 trivial assets and one of 1, defined here, run as the project runs
jobs (``execute_in_process`` with a real instance: a temp DAGSTER_HOME holding a copy of
deploy/local/dagster.yaml, SQLite storage; the filesystem IO manager; the executor of
``profiles.executor_for("local")``), in one fresh process after a warm-up of each;
per_step_s = (10-step run - 1-step run) / 9, median over the paired repetitions.
Prints JSON with the medians.
Usage: python -m benchmarks.bench_startup [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import timed

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODULE, LOCATION = "mlops_assets.definitions", "mlops_assets"
HEAVY_MODULES = (
    "mlflow",
    "sklearn",
    "pandas",
    "numpy",
    "pyarrow",
    "pandera",
    "matplotlib",
    "scipy",
)
# Dagster's own floor: a code location of one trivial asset, loaded the same way.
FLOOR_MODULE = """import dagster as dg


@dg.asset
def one() -> int:
    return 1


defs = dg.Definitions(assets=[one])
"""
LOAD_TARGET_S = 2.0
PER_STEP_TARGET_S = 0.3

# Runs in a fresh interpreter; the clock starts at its first statement.
LOAD_CODE = """
import time
started = time.perf_counter()
import sys
from dagster._core.code_pointer import CodePointer
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.definitions.repository_definition.repository_definition import (
    RepositoryLoadData,
)
from dagster._core.types.loadable_target_origin import (
    LoadableTargetOrigin,
    enter_loadable_target_origin_load_context,
)
from dagster._grpc.utils import get_loadable_targets

MODULE, LOCATION, ROOT, HEAVY = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
DefinitionsLoadContext.set(
    DefinitionsLoadContext(
        DefinitionsLoadType.INITIALIZATION,
        repository_load_data=RepositoryLoadData(defs_state_info=None, code_location_name=LOCATION),
    )
)
origin = LoadableTargetOrigin(
    executable_path=sys.executable, module_name=MODULE, working_directory=ROOT
)
jobs = 0
with enter_loadable_target_origin_load_context(origin):
    targets = get_loadable_targets(
        python_file=None,
        module_name=MODULE,
        package_name=None,
        autoload_defs_module_name=None,
        working_directory=ROOT,
        attribute=None,
        resolve_lazy_defs=True,
    )
    for target in targets:
        pointer = CodePointer.from_module(MODULE, target.attribute, ROOT)
        repository = ReconstructableRepository(pointer, executable_path=sys.executable)
        definition = repository.get_definition()
        definition.load_all_definitions()
        jobs += len(definition.get_all_jobs())
load_s = time.perf_counter() - started
cpu_s = time.process_time()
heavy = [name for name in HEAVY if name in sys.modules]
import json  # after the clock stopped: the code server does not need it to load
print(json.dumps({"load_s": load_s, "cpu_s": cpu_s, "jobs": jobs, "heavy_modules_loaded": heavy}))
"""


def _environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "DAGSTER_HOME": str(home), "MLOPS_ENV": "local"}
    env.pop("PYTHONPATH", None)
    return env


def _last_json(output: str) -> dict[str, Any]:
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return figures


def measure_chains(repeats: int) -> dict[str, Any]:
    """Time runs of a 10-step and a 1-step chain in this process (DAGSTER_HOME is set).

    Called in a fresh process by :func:`run`; the chains are jobs of one Definitions with the
    local profile's executor and the default (filesystem) IO manager, run the way
    ``mlops_assets.cli.rebuild`` runs the project's jobs.
    """
    import dagster as dg

    from mlops_assets.runtime import gc_policy, profiles

    def chain(prefix: str, length: int) -> list[dg.AssetsDefinition]:
        assets = []
        for index in range(length):
            name = f"{prefix}{index}"
            if index == 0:

                @dg.asset(name=name)
                def first() -> int:
                    return 0

                assets.append(first)
            else:

                @dg.asset(name=name, ins={"previous": dg.AssetIn(f"{prefix}{index - 1}")})
                def step(previous: int) -> int:
                    return previous + 1

                assets.append(step)
        return assets

    defs = dg.Definitions(
        assets=[*chain("a", 10), *chain("b", 1)],
        jobs=[
            dg.define_asset_job("ten_steps", selection=[f"a{index}" for index in range(10)]),
            dg.define_asset_job("one_step", selection=["b0"]),
        ],
        executor=profiles.executor_for("local"),
    )
    ten, one = defs.resolve_job_def("ten_steps"), defs.resolve_job_def("one_step")
    gc_policy.freeze_long_lived_objects()  # as mlops_assets.definitions does after loading

    with dg.DagsterInstance.get() as instance:

        def seconds(job: dg.JobDefinition, steps: int) -> float:
            started = time.perf_counter()
            result = job.execute_in_process(instance=instance, raise_on_error=False)
            elapsed = time.perf_counter() - started
            succeeded = len(result.get_step_success_events())
            if not result.success or succeeded != steps:
                raise RuntimeError(f"{job.name}: {succeeded} of {steps} steps succeeded")
            return elapsed

        seconds(ten, 10), seconds(one, 1)  # warm-up
        tens, ones = [], []
        for _ in range(repeats):
            tens.append(seconds(ten, 10))
            ones.append(seconds(one, 1))
        if not (Path(instance.storage_directory()) / "a9").is_file():
            raise RuntimeError("the steps' outputs did not go through the filesystem IO manager")
        storage = type(instance.run_storage).__name__
    return {"ten": tens, "one": ones, "run_storage": storage}


@dataclass(frozen=True)
class LoadSample:
    """One code-location load in a fresh process."""

    load_s: float
    cpu_s: float
    process_s: float
    jobs: int
    heavy_modules_loaded: list[str]


def _load(env: dict[str, str], module: str = MODULE, root: Path = ROOT) -> LoadSample:
    """Load a code location in a new process, as the code server does."""
    command = [str(BIN / "python"), "-c", LOAD_CODE, module, LOCATION, str(root)]
    elapsed, out = timed([*command, ",".join(HEAVY_MODULES)], env)
    figures = _last_json(out)
    return LoadSample(
        load_s=figures["load_s"],
        cpu_s=figures["cpu_s"],
        process_s=elapsed,
        jobs=figures["jobs"],
        heavy_modules_loaded=figures["heavy_modules_loaded"],
    )


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def run(repeats: int) -> dict[str, Any]:
    """Measure and return the figures."""
    validate = [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"]
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
        env = _environment(home)
        floor_root = Path(scratch) / "floor"
        floor_root.mkdir()
        (floor_root / "floor_definitions.py").write_text(FLOOR_MODULE)
        floor_env = {**env, "PYTHONPATH": str(floor_root)}
        _load(env)  # warm-up: bytecode and page cache
        _load(floor_env, "floor_definitions", floor_root)
        loads: list[LoadSample] = []
        floors: list[LoadSample] = []
        validate_times = []
        for _ in range(repeats):
            loads.append(_load(env))
            floors.append(_load(floor_env, "floor_definitions", floor_root))
            validate_times.append(timed(validate, env)[0])
        chains_code = (
            "import json; from benchmarks.bench_startup import measure_chains; "
            f"print(json.dumps(measure_chains({repeats})))"
        )
        chains = _last_json(timed([str(BIN / "python"), "-c", chains_code], env)[1])
    per_step = [(ten - one) / 9 for ten, one in zip(chains["ten"], chains["one"], strict=True)]
    load_s, per_step_s = _median([s.load_s for s in loads]), _median(per_step)
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "repeats": repeats,
        "load_s": load_s,
        "load_cpu_s": _median([s.cpu_s for s in loads]),
        "dagster_floor_load_s": _median([s.load_s for s in floors]),
        "load_over_floor_s": _median(
            [a.load_s - b.load_s for a, b in zip(loads, floors, strict=True)]
        ),
        "process_s": _median([s.process_s for s in loads]),
        "validate_s": _median(validate_times),
        "jobs_loaded": loads[-1].jobs,
        "heavy_modules_loaded": loads[-1].heavy_modules_loaded,
        "run_10_steps_s": _median(chains["ten"]),
        "run_1_step_s": _median(chains["one"]),
        "per_step_s": per_step_s,
        "executor": "in_process (profiles.executor_for('local'))",
        "run_storage": chains["run_storage"],
        "load_target_met": load_s <= LOAD_TARGET_S,
        "per_step_target_met": per_step_s <= PER_STEP_TARGET_S,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.repeats), indent=2))
