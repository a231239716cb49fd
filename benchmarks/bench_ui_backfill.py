"""The README's first step in the UI (*Materialize all* -> *All* -> *Launch backfill*) against
the plain script, in the same run.

Each repetition starts the stack as ``make run`` does (``dagster dev`` + ``mlflow server`` on free
loopback ports: ``mlops_assets_tests.stack.local_stack``) on a new scratch data folder (the
landing zone linked in), a new Dagster home made from deploy/local/dagster.yaml and the landed
months registered (``mlops-assets register-months``). It then launches over GraphQL what the
dialog launches for this graph (its partitioned assets share one partitions definition, so the
target is the hidden asset job and the dialog sends the keys it lists): ``launchPartitionBackfill``
with every materializable asset, every month and the tag ``dagster/from_ui``. Measured: the time
from the launch to the backfill's COMPLETED_SUCCESS, its runs (assets, month range, times), the
time during which no run of the backfill existed or executed (the daemons' iterations between
dependent runs, the run queue, run start-up) and the stack's resident memory at the end (every
process that uses its Dagster home). Then ``benchmarks/plain_pipeline.py`` on the same landed
months, as bench_pipeline.py runs it. The executing time is the union of the runs'
start-to-end spans (what the project controls); the rest is waiting between dependent runs.

The floor (``--floor``): the same backfill of ``benchmarks/noop_location.py``, the same graph
with bodies that do nothing, on a ``dagster dev`` of its own: the runs, levels and waits the
daemon imposes on this shape, and a run's cost with no work in it.
Prints JSON with the medians, the ratio of the medians, the median of the paired ratios and
each repetition's runs.
Usage: python -m benchmarks.bench_ui_backfill [--repeats N] [--months LAST] [--floor]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import dagster as dg

from benchmarks.bench_pipeline import local_environment, timed
from mlops_assets.landing import layout
from mlops_assets.runtime import settings
from mlops_assets_tests.stack import (
    dagster_dev,
    graphql,
    local_stack,
    processes_using,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

FROM_UI_TAG = {"key": "dagster/from_ui", "value": "true"}
"""What the UI adds to every backfill it launches (``tagsWithUIExecutionTags``)."""
BACKFILL_TAG = "dagster/backfill"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
ENDED_BADLY = {"FAILED", "FAILING", "COMPLETED_FAILED", "CANCELING", "CANCELED"}

ASSET_NODES = """{ assetNodes { assetKey { path } isMaterializable
  partitionKeysByDimension { name partitionKeys } } }"""
LAUNCH = """mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
BACKFILL = """query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status timestamp endTimestamp error { message } }
  ... on Error { message } } }"""
RUNS = """query ($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs {
  results { runId status creationTime startTime endTime assetSelection { path }
    assetCheckSelection { name } tags { key value } stepStats { stepKey startTime endTime }
  } } } }"""
RUN_COUNT = "{ runsOrError { ... on Runs { count } } }"
RUN_ERRORS = """query ($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection {
  events { ... on ExecutionStepFailureEvent { stepKey error { message } }
    ... on RunFailureEvent { message } } } } }"""


@dataclass
class BackfillRun:
    """One run of the backfill: what it materialized, on which months, and when (seconds from
    the backfill's creation on the server)."""

    assets: list[str]
    months: str
    checks: int
    status: str
    created_s: float
    started_s: float | None
    ended_s: float | None
    steps_s: dict[str, float] = field(default_factory=dict)
    """Each step's wall time (where a run's time goes: the model run's three steps)."""


@dataclass
class Process:
    """One process of the stack at the end of the backfill."""

    pid: int
    command: str
    rss_mb: float
    pss_mb: float


@dataclass
class Repetition:
    """The figures of one repetition."""

    months: int
    stack_start_s: float
    backfill_s: float
    backfill_server_s: float
    runs: int
    levels: int
    other_runs: int
    no_run_unfinished_s: float
    no_run_executing_s: float
    executing_s: float
    gaps_without_a_run_s: list[float]
    stack_rss_mb: float
    stack_pss_mb: float
    plain_s: float
    plain_roc_auc: float
    shape: list[BackfillRun] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)


def landing_through(source: Path, last: str | None, root: Path) -> Path:
    """The landing zone to run on: ``source`` itself, or up to ``last`` a folder of links to its
    files (the same bytes, fewer months).

    Raises:
        layout.LandingError: When ``last`` is not a month, or a month up to it has not landed.
    """
    if last is None:
        return source
    layout.parse_month(last)
    months = [m for m in layout.landed_months(source, "flights") if m <= last]
    if not months or months[-1] != last:
        raise layout.LandingError(f"--months {last}: not landed in {source}")
    (root / layout.PLANES_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / layout.PLANES_FILE).symlink_to(source / layout.PLANES_FILE)
    for table in layout.MONTHLY_TABLES:
        for month in months:
            link = layout.monthly_file(root, table, month)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(layout.monthly_file(source, table, month))
    return root


def every_asset_and_month(url: str) -> tuple[list[list[str]], list[str]]:
    """What *Materialize all* -> *All* selects: every materializable asset's key and the months
    the dialog lists (the one partitions definition the partitioned assets share).

    Raises:
        RuntimeError: When the partitioned assets do not share their partitions.
    """
    nodes = [n for n in graphql(url, ASSET_NODES)["assetNodes"] if n["isMaterializable"]]
    key_lists = {
        tuple(dimension["partitionKeys"])
        for node in nodes
        for dimension in node["partitionKeysByDimension"]
    }
    if len(key_lists) != 1:
        raise RuntimeError(f"the assets do not share one set of partitions: {key_lists}")
    return [n["assetKey"]["path"] for n in nodes], list(key_lists.pop())


def launch_backfill(url: str, assets: list[list[str]], months: list[str]) -> str:
    """Launch the dialog's backfill; its id.

    Raises:
        RuntimeError: When the launch is refused.
    """
    params = {
        "tags": [FROM_UI_TAG],
        "assetSelection": [{"path": path} for path in assets],
        "partitionNames": months,
        "fromFailure": False,
    }
    answer = graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill: {answer}")
    return str(answer["backfillId"])


def run_errors(url: str, run_id: str) -> list[str]:
    """The failure messages of a run's steps and of the run."""
    events = graphql(url, RUN_ERRORS, {"runId": run_id})["logsForRun"]["events"]
    return [
        f"{event.get('stepKey') or 'run'}: "
        + str((event.get("error") or {}).get("message") or event.get("message"))
        for event in events
        if event
    ]


def backfill_runs(url: str, backfill_id: str) -> list[dict[str, Any]]:
    """The runs tagged with the backfill, as GraphQL returns them."""
    tags = [{"key": BACKFILL_TAG, "value": backfill_id}]
    return list(graphql(url, RUNS, {"tags": tags})["runsOrError"]["results"])


def wait_for_backfill(url: str, backfill_id: str, timeout: float) -> dict[str, Any]:
    """Poll the backfill every second until COMPLETED_SUCCESS; its final record.

    Raises:
        RuntimeError: With the backfill's error and its failed runs' errors, when it ends in
            any other state.
    """
    final: dict[str, Any] = {}

    def succeeded() -> bool:
        record = graphql(url, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        if record["__typename"] != "PartitionBackfill":
            raise RuntimeError(f"backfill {backfill_id}: {record}")
        if record["status"] in ENDED_BADLY:
            failed = {
                run["runId"]: run_errors(url, run["runId"])
                for run in backfill_runs(url, backfill_id)
                if run["status"] in {"FAILURE", "CANCELED"}
            }
            raise RuntimeError(
                f"backfill {backfill_id} ended {record['status']}: {record['error']}; "
                f"failed runs: {json.dumps(failed, indent=1)}"
            )
        final.update(record)
        return bool(record["status"] == "COMPLETED_SUCCESS")

    wait_until(succeeded, timeout, f"backfill {backfill_id} to succeed", interval=1.0)
    return final


def months_of(tags: dict[str, str]) -> str:
    """A run's months: ``first..last`` of its range, or its one partition."""
    if RANGE_START_TAG in tags:
        return f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}"
    return tags.get(PARTITION_TAG, "-")


def shape_of(runs: list[dict[str, Any]], origin: float) -> list[BackfillRun]:
    """The runs in the order they were created, their times from ``origin``."""

    def since(moment: float | None) -> float | None:
        return None if moment is None else round(moment - origin, 1)

    shaped = []
    for run in sorted(runs, key=lambda r: float(r["creationTime"])):
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        shaped.append(
            BackfillRun(
                assets=sorted("/".join(key["path"]) for key in run["assetSelection"] or []),
                months=months_of(tags),
                checks=len(run["assetCheckSelection"] or []),
                status=str(run["status"]),
                created_s=round(float(run["creationTime"]) - origin, 1),
                started_s=since(run["startTime"]),
                ended_s=since(run["endTime"]),
                steps_s={
                    step["stepKey"]: round(float(step["endTime"]) - float(step["startTime"]), 1)
                    for step in run["stepStats"] or []
                    if step["startTime"] and step["endTime"]
                },
            )
        )
    return shaped


def uncovered(intervals: list[tuple[float, float]], start: float, end: float) -> list[float]:
    """The lengths of the stretches of ``[start, end]`` that no interval covers, in order."""
    gaps, reached = [], start
    for low, high in sorted(intervals):
        if low > reached:
            gaps.append(low - reached)
        reached = max(reached, high)
    if end > reached:
        gaps.append(end - reached)
    return gaps


def levels(shape: list[BackfillRun], within: float = 10.0) -> int:
    """How many times the daemon launched runs: runs created within ``within`` seconds of the
    previous one were launched by the same iteration (its iterations are 30 s apart)."""
    created = sorted(run.created_s for run in shape)
    return sum(1 for i, moment in enumerate(created) if i == 0 or moment - created[i - 1] > within)


def union(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of the intervals: the time at least one of them covers."""
    total, reached = 0.0, float("-inf")
    for low, high in sorted(intervals):
        if high > reached:
            total += high - max(low, reached)
            reached = high
    return total


def stack_processes(dagster_home: Path) -> list[Process]:
    """Every live process that uses the Dagster home (the stack's, and any run still going):
    its resident and proportional set sizes from /proc."""
    found = []
    for pid in processes_using(str(dagster_home)):
        proc = Path("/proc") / str(pid)
        try:
            status = (proc / "status").read_text()
            rollup = (proc / "smaps_rollup").read_text()
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # ended meanwhile
            continue
        kib = {
            line.split(":")[0]: int(line.split()[1])
            for line in (status + rollup).splitlines()
            if line.startswith(("VmRSS:", "Pss:"))
        }
        command = " ".join([Path(argv[0]).name, *(Path(a).name for a in argv[1:4] if a)])
        found.append(
            Process(pid, command, round(kib["VmRSS"] / 1024, 1), round(kib["Pss"] / 1024, 1))
        )
    return found


@dataclass
class Backfilled:
    """A backfill of everything, ended: its months, its wall time from the launch, its
    creation and end on the server, and its runs as GraphQL returns them."""

    months: int
    elapsed_s: float
    created: float
    ended: float
    runs: list[dict[str, Any]]

    @property
    def executing(self) -> list[tuple[float, float]]:
        """Each run's span from its start to its end."""
        return [(float(r["startTime"]), float(r["endTime"])) for r in self.runs]

    @property
    def shape(self) -> list[BackfillRun]:
        """The runs, their times from the backfill's creation."""
        return shape_of(self.runs, self.created)


def backfill_everything(url: str, timeout: float) -> Backfilled:
    """What *Materialize all* -> *All* -> *Launch backfill* launches, waited for."""
    assets, months = every_asset_and_month(url)
    launched = time.perf_counter()
    backfill_id = launch_backfill(url, assets, months)
    record = wait_for_backfill(url, backfill_id, timeout)
    elapsed = time.perf_counter() - launched
    return Backfilled(
        months=len(months),
        elapsed_s=elapsed,
        created=float(record["timestamp"]),
        ended=float(record["endTimestamp"]),
        runs=backfill_runs(url, backfill_id),
    )


def repetition(source: Path, last: str | None, scratch: Path, timeout: float) -> Repetition:
    """Start the stack, backfill everything from its GraphQL API, stop it; then the plain
    script on the same months."""
    landing_dir = landing_through(source, last, scratch / "landing")
    started = time.perf_counter()
    with local_stack(scratch / "stack", landing_dir) as stack:
        stack_start = time.perf_counter() - started
        done = backfill_everything(stack.dagster_url, timeout)
        processes = stack_processes(stack.dagster_home)
        every_run = int(graphql(stack.dagster_url, RUN_COUNT)["runsOrError"]["count"])
    created, ended, runs = done.created, done.ended, done.runs
    unfinished = [(float(r["creationTime"]), float(r["endTime"])) for r in runs]
    gaps = uncovered(unfinished, created, ended)
    shape = done.shape
    plain_out = scratch / "plain"
    plain_env = local_environment(plain_out / "data", plain_out / "dagster_home")
    command = [str(BIN / "python"), "benchmarks/plain_pipeline.py", str(landing_dir)]
    plain_s, out = timed([*command, str(plain_out)], plain_env)
    return Repetition(
        months=done.months,
        stack_start_s=round(stack_start, 2),
        backfill_s=round(done.elapsed_s, 2),
        backfill_server_s=round(ended - created, 2),
        runs=len(runs),
        levels=levels(shape),
        other_runs=every_run - len(runs),
        no_run_unfinished_s=round(sum(gaps), 1),
        no_run_executing_s=round(sum(uncovered(done.executing, created, ended)), 1),
        executing_s=round(union(done.executing), 1),
        gaps_without_a_run_s=[round(gap, 1) for gap in gaps],
        stack_rss_mb=round(sum(p.rss_mb for p in processes), 1),
        stack_pss_mb=round(sum(p.pss_mb for p in processes), 1),
        plain_s=round(plain_s, 2),
        plain_roc_auc=round(json.loads(out.strip().splitlines()[-1])["roc_auc"], 4),
        shape=shape,
        processes=processes,
    )


@contextmanager
def noop_stack(root: Path, months: list[str]) -> Iterator[str]:
    """``dagster dev`` on ``benchmarks/noop_location.py`` with the project's instance settings,
    ``months`` registered; its URL. None of its processes may outlive it."""
    home = root / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    timed([str(BIN / "mlops-assets"), "init-instance", "--home", str(home)], env)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("month", months)
    with dagster_dev("benchmarks.noop_location", env, root / "logs") as url:
        yield url
    left = processes_using(str(home))
    if left:
        raise AssertionError(f"processes left running after the no-op stack stopped: {left}")


def floor(months: list[str], scratch: Path, timeout: float) -> dict[str, Any]:
    """The same backfill on the no-op graph: its runs, levels, waits and per-run cost."""
    with noop_stack(scratch, months) as url:
        done = backfill_everything(url, timeout)
    shape = done.shape
    return {
        "backfill_s": round(done.elapsed_s, 2),
        "backfill_server_s": round(done.ended - done.created, 2),
        "runs": len(done.runs),
        "levels": levels(shape),
        "executing_s": round(union(done.executing), 1),
        "no_run_executing_s": round(sum(uncovered(done.executing, done.created, done.ended)), 1),
        "run_s_median": round(statistics.median(high - low for low, high in done.executing), 2),
        "queued_s_median": round(
            statistics.median(float(r["startTime"]) - float(r["creationTime"]) for r in done.runs),
            2,
        ),
        "shape": [asdict(run) for run in shape],
    }


def run(
    repeats: int, last: str | None = None, timeout: float = 3600.0, with_floor: bool = False
) -> dict[str, Any]:
    """Measure and return the figures (with the no-op floor, once per repetition)."""
    source = settings.landing_dir()
    if layout.is_empty(source):
        layout.seed_landing_zone(source)
    months = [m for m in layout.landed_months(source, "flights") if last is None or m <= last]
    done, floors = [], []
    for index in range(repeats):
        with tempfile.TemporaryDirectory() as scratch:
            done.append(repetition(source, last, Path(scratch) / f"rep-{index}", timeout))
            if with_floor:
                floors.append(floor(months, Path(scratch) / f"floor-{index}", timeout))
    backfill = statistics.median(r.backfill_s for r in done)
    baseline = statistics.median(r.plain_s for r in done)
    executing = statistics.median(r.executing_s for r in done)
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, dagster {metadata.version('dagster')}, "
        f"mlflow {metadata.version('mlflow')}",
        "repeats": repeats,
        "months": done[0].months,
        "months_per_run": settings.months_per_run(),
        "backfill_s": round(backfill, 2),
        "plain_s": round(baseline, 2),
        "ratio": round(backfill / baseline, 3),
        "paired_ratio_median": round(statistics.median(r.backfill_s / r.plain_s for r in done), 3),
        "runs": statistics.median(r.runs for r in done),
        "levels": statistics.median(r.levels for r in done),
        "executing_s": executing,
        "executing_ratio": round(executing / baseline, 3),
        "no_run_unfinished_s": statistics.median(r.no_run_unfinished_s for r in done),
        "no_run_executing_s": statistics.median(r.no_run_executing_s for r in done),
        "stack_rss_mb": statistics.median(r.stack_rss_mb for r in done),
        "stack_pss_mb": statistics.median(r.stack_pss_mb for r in done),
        "repetitions": [asdict(r) for r in done],
    }
    if floors:
        figures["floor"] = {
            key: statistics.median(f[key] for f in floors)
            for key in (
                "backfill_server_s",
                "runs",
                "levels",
                "executing_s",
                "no_run_executing_s",
                "run_s_median",
                "queued_s_median",
            )
        }
        figures["floors"] = floors
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--months", metavar="LAST", help="land the months up to LAST (YYYY-MM) only; default all"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per backfill")
    parser.add_argument(
        "--floor", action="store_true", help="also backfill the no-op graph of the same shape"
    )
    arguments = parser.parse_args()
    figures = run(arguments.repeats, arguments.months, arguments.timeout, arguments.floor)
    print(json.dumps(figures, indent=2))
