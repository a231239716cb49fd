"""The landing-zone sensor: new or changed monthly files become partitions and runs."""

import dagster as dg

from mlops_assets import landing_scan
from mlops_assets.defs.jobs import month_job, planes_job
from mlops_assets.defs.partitions import MONTHS
from mlops_assets.landing import MONTHLY_TABLES, PLANES_FILE
from mlops_assets.resources import LandingZone

RAW_ASSETS = {"flights": dg.AssetKey("raw_flights"), "weather": dg.AssetKey("raw_weather")}
FEATURES = dg.AssetKey("flight_features")
PLANES = dg.AssetKey("raw_planes")
TRIGGER_TAG = "mlops/trigger"


def _latest(
    instance: dg.DagsterInstance, key: dg.AssetKey, month: str | None
) -> dg.EventLogRecord | None:
    records_filter = dg.AssetRecordsFilter(
        asset_key=key, asset_partitions=[month] if month else None
    )
    records = instance.fetch_materializations(records_filter, limit=1).records
    return records[0] if records else None


def _data_version(record: dg.EventLogRecord | None) -> str | None:
    materialization = record.asset_materialization if record else None
    tags = materialization.tags if materialization else None
    return tags.get("dagster/data_version") if tags else None


def _month_request(
    instance: dg.DagsterInstance, state: dict[str, landing_scan.FileState], month: str
) -> dg.RunRequest | None:
    """The run that brings a month's partitions up to the consumed files; None if they are."""
    expected = {t: landing_scan.month_version(state, t, month) for t in MONTHLY_TABLES}
    latest = {t: _latest(instance, key, month) for t, key in RAW_ASSETS.items()}
    up_to_date = all(_data_version(latest[t]) == expected[t] for t in MONTHLY_TABLES)
    if up_to_date and _latest(instance, FEATURES, month) is not None:
        return None
    # Unique per content and per earlier materialization: a file changed from A to B and
    # back to A is requested again, and a tick retried after a crash is not requested twice.
    before = latest["flights"].storage_id if latest["flights"] else 0
    return dg.RunRequest(
        job_name=month_job.name,
        partition_key=month,
        run_key=f"{month}:{expected['flights'][:12]}:{expected['weather'][:12]}:{before}",
        tags={TRIGGER_TAG: "landing_zone_sensor"},
    )


@dg.sensor(
    name="landing_zone_sensor",
    jobs=[month_job, planes_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Registers each newly landed month and runs its raw data and features; "
    "re-runs a month whose file changed, and the planes when theirs did.",
)
def landing_zone_sensor(
    context: dg.SensorEvaluationContext, landing_zone: LandingZone
) -> dg.SensorResult:
    """Scan the landing zone against the cursor and request runs for what changed."""
    previous = landing_scan.decode_state(context.cursor)
    result = landing_scan.scan(landing_zone.root(), previous)
    for line in result.rejected:
        context.log.warning(line)
    for line in result.waiting:
        context.log.info(line)
    state = result.state
    notes = [*result.rejected, *result.waiting]
    requests: list[dg.RunRequest] = []
    planes = next((c for c in result.changed if c.key == PLANES_FILE), None)
    if planes and _data_version(_latest(context.instance, PLANES, None)) != (
        landing_scan.version_of({PLANES_FILE: planes.sha256})
    ):
        requests.append(
            dg.RunRequest(
                job_name=planes_job.name,
                run_key=f"planes:{planes.sha256[:12]}",
                tags={TRIGGER_TAG: "landing_zone_sensor"},
            )
        )
    months = landing_scan.months_to_build(result)
    if months and _latest(context.instance, PLANES, None) is None:
        # The features of a month need raw_planes: the months are looked at again once the
        # planes run has materialized it.
        notes.append(
            f"months {', '.join(months)} wait for raw_planes: materialize it (planes_job) first"
        )
        context.log.info(notes[-1])
        deferred = {f"{t}/{m}.csv.gz" for t in MONTHLY_TABLES for m in months}
        state = {
            key: previous[key] if key in deferred else value
            for key, value in state.items()
            if key not in deferred or key in previous
        }
        months = []
    registered = (
        set(context.instance.get_dynamic_partitions(MONTHS.name or "month")) if months else set()
    )
    new_partitions = [m for m in months if m not in registered]
    requests += filter(None, (_month_request(context.instance, state, m) for m in months))
    summary = (
        f"{len(result.changed)} new or changed file(s), {len(result.rejected)} rejected, "
        f"{len(result.waiting)} waiting, {result.files_read} read"
    )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[MONTHS.build_add_request(new_partitions)]
        if new_partitions
        else None,
        cursor=landing_scan.encode_state(state),
        skip_reason=None if requests else "; ".join([f"nothing to run: {summary}", *notes]),
    )
