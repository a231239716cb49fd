"""The landing-zone sensor: new or changed monthly files become partitions and runs."""

import dagster as dg

from mlops_assets.defs.operations.jobs import month_job
from mlops_assets.defs.shared.keys import (
    FLIGHT_FEATURES,
    RAW_FLIGHTS,
    RAW_PLANES,
    RAW_WEATHER,
    TRIGGER_TAG,
)
from mlops_assets.defs.shared.lineage import latest_materialization
from mlops_assets.defs.shared.partitions import (
    MONTH_PARTITIONS,
    MONTHS,
    batch_label,
    batch_target,
    month_ranges,
)
from mlops_assets.landing import scan
from mlops_assets.landing.layout import MONTHLY_TABLES, PLANES_FILE
from mlops_assets.resources import LandingZone

RAW_ASSETS = {
    "flights": RAW_FLIGHTS,
    "weather": RAW_WEATHER,
    "planes": RAW_PLANES,
}


def _run_key(
    prefix: str,
    state: dict[str, scan.FileState],
    keys: list[str],
    target: dg.EventLogRecord | None,
) -> str:
    """A run key from the landed files and the latest materialization the run would replace.

    A tick retried after a crash gives the same key while that run has not produced its
    result, so the daemon does not launch it twice. A new landing (even back to content that
    ran before) or a newer materialization since (a cursor reset finding features older than
    their raw data) gives a new key. A run that failed keeps its key: re-execute it from the
    UI once its cause is fixed, or land the file again.
    """
    parts = [f"{state[k].sha256[:12]}@{state[k].mtime_ns}" for k in keys if k in state]
    return ":".join([prefix, *parts, str(target.storage_id if target else 0)])


def _content_version(record: dg.EventLogRecord | None) -> str | None:
    """The version of the landed files a raw partition was read from (its ``content_sha256``)."""
    materialization = record.asset_materialization if record else None
    value = materialization.metadata.get("content_sha256") if materialization else None
    return str(value.value) if isinstance(value, dg.TextMetadataValue) else None


def _month_built(
    instance: dg.DagsterInstance, state: dict[str, scan.FileState], month: str
) -> tuple[bool, dg.EventLogRecord | None]:
    """Whether the month's partitions hold the consumed files; its latest features record."""
    expected = {t: scan.month_version(state, t, month) for t in MONTHLY_TABLES}
    expected["planes"] = scan.version_of({PLANES_FILE: state[PLANES_FILE].sha256})
    latest = {t: latest_materialization(instance, key, month) for t, key in RAW_ASSETS.items()}
    features = latest_materialization(instance, FLIGHT_FEATURES, month)
    raw_current = all(_content_version(latest[t]) == expected[t] for t in RAW_ASSETS)
    features_after_raw = features is not None and all(
        record is not None and features.storage_id > record.storage_id for record in latest.values()
    )
    return raw_current and features_after_raw, features


def _month_requests(
    instance: dg.DagsterInstance,
    state: dict[str, scan.FileState],
    months: list[str],
    order: list[str],
) -> list[dg.RunRequest]:
    """The runs that bring the months' partitions up to the consumed files, in batches.

    The months not yet built are cut into the ranges a backfill would run
    (:func:`~mlops_assets.defs.shared.partitions.month_ranges`): catching up on a year is two runs,
    a single new month one run of that month.
    """
    stale: dict[str, dg.EventLogRecord | None] = {}
    for month in months:
        built, features = _month_built(instance, state, month)
        if not built:
            stale[month] = features
    requests = []
    for first, last in month_ranges(list(stale), order):
        batch = order[order.index(first) : order.index(last) + 1]
        inputs = sorted(
            {
                PLANES_FILE,
                *(k for m in batch for t in MONTHLY_TABLES for k in scan.month_inputs(state, t, m)),
            }
        )
        newest = max(
            (record for record in (stale[m] for m in batch) if record is not None),
            key=lambda record: record.storage_id,
            default=None,
        )
        partition_key, batch_tags = batch_target((first, last))
        requests.append(
            dg.RunRequest(
                job_name=month_job.name,
                partition_key=partition_key,
                run_key=_run_key(batch_label(first, last), state, inputs, newest),
                tags={TRIGGER_TAG: "landing_zone_sensor", **batch_tags},
            )
        )
    return requests


def _capped(lines: list[str], limit: int = 20) -> list[str]:
    return lines[:limit] + ([f"... and {len(lines) - limit} more"] if len(lines) > limit else [])


@dg.sensor(
    name="landing_zone_sensor",
    jobs=[month_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Registers each newly landed month and runs its raw data and features; "
    "re-runs a month whose file changed, and every month when the planes file did.",
)
def landing_zone_sensor(
    context: dg.SensorEvaluationContext, landing_zone: LandingZone
) -> dg.SensorResult:
    """Scan the landing zone against the cursor and request runs for what changed."""
    previous = scan.decode_state(context.cursor)
    result = scan.scan(landing_zone.root(), previous)
    state = result.state
    notes = [*result.rejected, *result.waiting]
    months = sorted(set(scan.months_to_build(result)) | set(scan.decode_pending(context.cursor)))
    if any(c.key == PLANES_FILE for c in result.changed):
        # Every month's features were built with the planes file before: all are rebuilt.
        months = sorted(set(months) | set(scan.consumed_months(state)))
    pending: list[str] = []
    if months and PLANES_FILE not in state:
        # A month's run reads the planes file too: the months wait (in the cursor, without
        # being read again) until it lands.
        pending, months = months, []
        notes.append(f"months {', '.join(pending)} wait for {PLANES_FILE}: land it")
    registered = list(context.instance.get_dynamic_partitions(MONTH_PARTITIONS)) if months else []
    new_partitions = [m for m in months if m not in set(registered)]
    requests = _month_requests(context.instance, state, months, registered + new_partitions)
    for line in _capped(notes):
        (context.log.warning if line in result.rejected else context.log.info)(line)
    summary = (
        f"{len(result.changed)} new or changed file(s), {len(result.rejected)} rejected, "
        f"{len(result.waiting)} waiting, {result.files_read} read"
    )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[MONTHS.build_add_request(new_partitions)]
        if new_partitions
        else None,
        cursor=scan.encode_state(state, pending),
        skip_reason=None
        if requests
        else "; ".join([f"nothing to run: {summary}", *_capped(notes)]),
    )
