"""Raw assets: the landing zone's files, read into typed tables, one partition per month."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from mlops_assets.defs.shared import checks
from mlops_assets.defs.shared.keys import CODE_VERSIONS
from mlops_assets.defs.shared.metadata import table_metadata
from mlops_assets.defs.shared.partitions import month_asset, month_step, months_of
from mlops_assets.defs.shared.policies import FILE_RETRY
from mlops_assets.defs.shared.tables import DataFrame, table_type
from mlops_assets.landing.layout import LandingError
from mlops_assets.landing.scan import content_version, version_of
from mlops_assets.resources import LandingZone, MlflowTracking

if TYPE_CHECKING:
    import pandera.pandas as pa

    from mlops_assets.ml.quality import Outcome

GROUP = "ingestion"

RawEvents = Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation | dg.Output[Any]]


class RawChecksConfig(dg.Config):
    """Thresholds of the warning checks on a landed month (the blocking ones are the schema)."""

    min_row_ratio: float = Field(
        default=0.7, gt=0, description="Warn below this many times the previous month's rows."
    )
    max_row_ratio: float = Field(
        default=1.3, gt=0, description="Warn above this many times the previous month's rows."
    )
    max_null_share: float = Field(
        default=0.1, ge=0, le=1, description="Warn when a column has more missing values."
    )
    null_share_limits: dict[str, float] = Field(
        # 2013's worst months: wind_gust 90% missing, pressure 15%.
        default={"wind_gust": 0.97, "pressure": 0.35},
        description="Per-column limits that replace max_null_share.",
    )


def raw_asset(
    name: str, checked: Sequence[checks.Check]
) -> Callable[[Callable[..., RawEvents]], dg.AssetsDefinition]:
    """Declare a raw asset, one partition per month, with its declared schema and checks."""
    return month_asset(
        name,
        group_name=GROUP,
        kinds={"pandas", "csv"},
        code_version=CODE_VERSIONS[dg.AssetKey(name)],
        retry_policy=FILE_RETRY,
        dagster_type=table_type(name),
        check_specs=checks.check_specs(name, checked),
    )


def _read(path: Path, schema: Mapping[str, str]) -> DataFrame:
    from mlops_assets.ml import raw

    try:
        return raw.read_raw_csv(path, schema)
    except LandingError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error


def _read_metadata(frame: DataFrame, paths: list[Path], version: str) -> dict[str, Any]:
    """What a raw partition records of what it read: its table, its files and their hash."""
    return {
        **table_metadata(frame),
        "files": dg.MetadataValue.json([str(path) for path in paths]),
        "content_sha256": dg.MetadataValue.text(version),
    }


@dataclass(frozen=True)
class MonthlyTable:
    """A table landed one file per month, and how its files are read and checked."""

    name: str
    types: Mapping[str, str]
    schema: "pa.DataFrameSchema"
    key: Sequence[str]
    limits: Mapping[str, tuple[float, float]]
    """Readings outside these bounds are blanked and reported (sensor glitches)."""


def monthly_table(name: Literal["flights", "weather"]) -> MonthlyTable:
    """How the table's monthly files are read and checked (pandera loads here, in the step)."""
    from mlops_assets.ml import raw, schemas

    if name == "flights":
        return MonthlyTable(
            name, raw.FLIGHTS_SCHEMA, schemas.RAW_FLIGHTS, schemas.FLIGHT_KEY, limits={}
        )
    return MonthlyTable(
        name, raw.WEATHER_SCHEMA, schemas.RAW_WEATHER, schemas.WEATHER_KEY, schemas.WEATHER_LIMITS
    )


def _month_outcomes(
    table: MonthlyTable,
    current: DataFrame,
    previous: DataFrame | None,
    masked: Mapping[str, list[float]],
    month: str,
    path: Path,
    config: RawChecksConfig,
) -> list["Outcome"]:
    from mlops_assets.ml import quality

    source = str(path)
    outcomes = [
        quality.schema_outcome(current, table.schema, source),
        quality.month_outcome(current, month, source),
        quality.duplicates_outcome(current, table.key, source),
        quality.null_rates_outcome(
            current, config.null_share_limits, config.max_null_share, source
        ),
        quality.row_count_outcome(
            len(current),
            None if previous is None else len(previous),
            (config.min_row_ratio, config.max_row_ratio),
            source,
        ),
    ]
    if table.limits:
        outcomes.append(quality.masked_outcome(masked, source))
    return outcomes


def _materialize_months(
    context: dg.AssetExecutionContext,
    config: RawChecksConfig,
    landing_zone: LandingZone,
    mlflow_tracking: MlflowTracking,
    name: Literal["flights", "weather"],
) -> RawEvents:
    """Read, check and type each month of the step's batch; store them all or none.

    Each month's checks are reported on its partition as soon as it is read; a blocking
    failure in any month fails the step once every month is reported, before anything is
    stored. Each month's partition gets its own metadata, with ``content_sha256``, the
    version of the files it read (what the landing sensor compares). The data version is
    that same hash for a single month; a batch's months share one data version (Dagster
    records one per output and run), the hash of all their files.
    """
    from mlops_assets.ml import quality, raw

    table = monthly_table(name)
    months = months_of(context)
    frames: dict[str, DataFrame] = {}
    versions: dict[str, str] = {}
    outcomes: dict[str, list[Outcome]] = {}
    read: dict[Path, DataFrame] = {}

    def masked_read(path: Path) -> tuple[DataFrame, Mapping[str, list[float]]]:
        return quality.mask_impossible(_read(path, table.types), table.limits)

    with mlflow_tracking.asset_run(context) as run:
        run.log_params({"months": ",".join(months), "table": table.name})
        for month in months:
            path = landing_zone.month_file(table.name, month)
            previous_path = landing_zone.previous_month_file(table.name, month)
            current, masked = masked_read(path)
            read[path] = current
            previous = None
            if previous_path is not None:
                previous = read.get(previous_path)
                if previous is None:
                    previous = masked_read(previous_path)[0]
            outcomes[month] = _month_outcomes(table, current, previous, masked, month, path, config)
            yield from checks.month_evaluations(context.asset_key, month, outcomes[month])
            frames[month] = raw.with_context(current, previous)
            context_rows = len(frames[month]) - len(current)
            paths = [path] if previous_path is None else [previous_path, path]
            versions[month] = content_version(paths)
            run.log_metrics(
                {
                    "row_count": len(current),
                    "context_rows": context_rows,
                    "failed_checks": sum(not outcome.passed for outcome in outcomes[month]),
                },
                step=month_step(month),
            )
            context.add_asset_metadata(
                {
                    **_read_metadata(frames[month], paths, versions[month]),
                    "month_rows": dg.MetadataValue.int(len(current)),
                    "context_rows": dg.MetadataValue.int(context_rows),
                },
                partition_key=month,
            )
        # Inside the MLflow run, so that a refused file ends it FAILED.
        checks.refuse_months(outcomes, kept=f"the stored {table.name} of {', '.join(months)}")
    batch_version = versions[months[0]] if len(months) == 1 else version_of(versions)
    yield dg.Output(
        frames,
        output_name=context.asset_key.to_python_identifier(),
        data_version=dg.DataVersion(batch_version),
        metadata=run.metadata(),
    )


@raw_asset("raw_flights", checks.RAW_FLIGHTS_CHECKS)
def raw_flights(
    context: dg.AssetExecutionContext,
    config: RawChecksConfig,
    landing_zone: LandingZone,
    mlflow_tracking: MlflowTracking,
) -> RawEvents:
    """A month's flights departing New York City, typed and checked, after the previous 7 days."""
    yield from _materialize_months(context, config, landing_zone, mlflow_tracking, "flights")


@raw_asset("raw_weather", checks.RAW_WEATHER_CHECKS)
def raw_weather(
    context: dg.AssetExecutionContext,
    config: RawChecksConfig,
    landing_zone: LandingZone,
    mlflow_tracking: MlflowTracking,
) -> RawEvents:
    """A month's hourly weather at the three airports, typed and checked, after 7 days before."""
    yield from _materialize_months(context, config, landing_zone, mlflow_tracking, "weather")


@raw_asset("raw_planes", (checks.SCHEMA,))
def raw_planes(
    context: dg.AssetExecutionContext, landing_zone: LandingZone, mlflow_tracking: MlflowTracking
) -> RawEvents:
    """Aircraft attributes by tail number (maker, model, year, seats), as each month read them."""
    # A month's partition is the planes file its features were built with. Partitioned like
    # the months, it runs in their runs (a backfill waits for an unpartitioned parent's own
    # run first), and a new planes file rebuilds every month (the landing sensor).
    from mlops_assets.ml import quality, raw, schemas

    months = months_of(context)
    with mlflow_tracking.asset_run(context) as run:
        path = landing_zone.planes_file()
        frame = _read(path, raw.PLANES_SCHEMA)
        version = content_version([path])
        run.log_params({"months": ",".join(months), "file": path.name})
        run.log_metrics({"row_count": len(frame)})
        outcome = quality.schema_outcome(frame, schemas.RAW_PLANES, str(path))
        for month in months:
            yield from checks.month_evaluations(context.asset_key, month, [outcome])
            context.add_asset_metadata(_read_metadata(frame, [path], version), partition_key=month)
        checks.refuse_months(
            {month: [outcome] for month in months},
            kept=f"the stored planes of {', '.join(months)}",
        )
    # Every month of the batch read the same file: its hash is the data version, whatever
    # the batch.
    yield dg.Output(
        {month: frame for month in months},
        output_name="raw_planes",
        data_version=dg.DataVersion(version),
        metadata=run.metadata(),
    )
