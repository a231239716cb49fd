"""Raw assets: the landing zone's files, read into typed tables, one partition per month."""

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from dagster_pandera import pandera_schema_to_dagster_type
from pydantic import Field

from mlops_assets.defs import checks
from mlops_assets.defs.metadata import OWNERS, table_metadata
from mlops_assets.defs.partitions import MONTHS, month_of
from mlops_assets.defs.policies import FILE_RETRY
from mlops_assets.landing import LandingError
from mlops_assets.landing_scan import content_version
from mlops_assets.ml import quality, raw, schemas
from mlops_assets.resources import AssetRun, LandingZone, MlflowTracking

GROUP = "ingestion"

RawEvents = Iterator[dg.AssetCheckResult | dg.Output[pd.DataFrame]]


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
    schema: pa.DataFrameSchema, checked: Sequence[checks.Check]
) -> Callable[[Callable[..., RawEvents]], dg.AssetsDefinition]:
    """Declare a raw asset with its declared schema (columns shown in the UI) and checks."""
    name = str(schema.name)
    monthly = name != "raw_planes"
    return dg.asset(
        name=name,
        group_name=GROUP,
        kinds={"pandas", "csv"},
        owners=OWNERS,
        code_version="3",
        retry_policy=FILE_RETRY,
        partitions_def=MONTHS if monthly else None,
        dagster_type=pandera_schema_to_dagster_type(schema),
        check_specs=checks.check_specs(name, checked, partitioned=monthly),
    )


def _read(path: Path, schema: Mapping[str, str]) -> pd.DataFrame:
    try:
        return raw.read_raw_csv(path, schema)
    except LandingError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error


def _output(
    frame: pd.DataFrame, paths: list[Path], run: AssetRun, **extra: dg.MetadataValue
) -> dg.Output[pd.DataFrame]:
    version = content_version(paths)
    return dg.Output(
        frame,
        data_version=dg.DataVersion(version),
        metadata={
            **table_metadata(frame),
            "files": dg.MetadataValue.json([str(path) for path in paths]),
            "content_sha256": dg.MetadataValue.text(version),
            **extra,
            **run.metadata(),
        },
    )


def _month_outcomes(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    month: str,
    path: Path,
    schema: pa.DataFrameSchema,
    key: Sequence[str],
    config: RawChecksConfig,
) -> list[quality.Outcome]:
    source = str(path)
    return [
        quality.schema_outcome(current, schema, source),
        quality.month_outcome(current, month, source),
        quality.duplicates_outcome(current, key, source),
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


def _materialize_month(
    context: dg.AssetExecutionContext,
    config: RawChecksConfig,
    landing_zone: LandingZone,
    mlflow_tracking: MlflowTracking,
    table: str,
    schema: pa.DataFrameSchema,
    key: Sequence[str],
) -> RawEvents:
    import mlflow

    month = month_of(context)
    types = raw.FLIGHTS_SCHEMA if table == "flights" else raw.WEATHER_SCHEMA
    with mlflow_tracking.asset_run(context) as run:
        path = landing_zone.month_file(table, month)
        previous_path = landing_zone.previous_month_file(table, month)
        current = _read(path, types)
        previous = _read(previous_path, types) if previous_path else None
        masked: dict[str, list[float]] = {}
        if table == "weather":
            current, masked = quality.mask_impossible(current, schemas.WEATHER_LIMITS)
            if previous is not None:
                previous, _ = quality.mask_impossible(previous, schemas.WEATHER_LIMITS)
        outcomes = _month_outcomes(current, previous, month, path, schema, key, config)
        if table == "weather":
            outcomes.append(quality.masked_outcome(masked, str(path)))
        frame = raw.with_context(current, previous)
        context_rows = len(frame) - len(current)
        mlflow.log_params({"month": month, "file": path.name})
        mlflow.log_metrics(
            {
                "row_count": len(current),
                "context_rows": context_rows,
                "failed_checks": sum(not outcome.passed for outcome in outcomes),
            }
        )
        # Inside the MLflow run, so that a refused file ends it FAILED.
        yield from checks.report(outcomes, kept=f"the stored {table} of {month}")
    paths = [path] if previous_path is None else [previous_path, path]
    yield _output(
        frame,
        paths,
        run,
        month_rows=dg.MetadataValue.int(len(current)),
        context_rows=dg.MetadataValue.int(context_rows),
    )


@raw_asset(schemas.RAW_FLIGHTS, checks.RAW_FLIGHTS_CHECKS)
def raw_flights(
    context: dg.AssetExecutionContext,
    config: RawChecksConfig,
    landing_zone: LandingZone,
    mlflow_tracking: MlflowTracking,
) -> RawEvents:
    """A month's flights departing New York City, typed and checked, after the previous 7 days."""
    yield from _materialize_month(
        context, config, landing_zone, mlflow_tracking, "flights", schemas.RAW_FLIGHTS,
        schemas.FLIGHT_KEY,
    )  # fmt: skip


@raw_asset(schemas.RAW_WEATHER, checks.RAW_WEATHER_CHECKS)
def raw_weather(
    context: dg.AssetExecutionContext,
    config: RawChecksConfig,
    landing_zone: LandingZone,
    mlflow_tracking: MlflowTracking,
) -> RawEvents:
    """A month's hourly weather at the three airports, typed and checked, after 7 days before."""
    yield from _materialize_month(
        context, config, landing_zone, mlflow_tracking, "weather", schemas.RAW_WEATHER,
        schemas.WEATHER_KEY,
    )  # fmt: skip


@raw_asset(schemas.RAW_PLANES, (checks.SCHEMA,))
def raw_planes(
    context: dg.AssetExecutionContext, landing_zone: LandingZone, mlflow_tracking: MlflowTracking
) -> RawEvents:
    """Aircraft attributes by tail number (maker, model, year, seats, engines)."""
    import mlflow

    with mlflow_tracking.asset_run(context) as run:
        path = landing_zone.planes_file()
        frame = _read(path, raw.PLANES_SCHEMA)
        mlflow.log_params({"file": path.name})
        mlflow.log_metrics({"row_count": len(frame)})
        outcome = quality.schema_outcome(frame, schemas.RAW_PLANES, str(path))
        yield from checks.report([outcome], kept="the stored planes table")
    yield _output(frame, [path], run)
