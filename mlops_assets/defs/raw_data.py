"""Raw assets: the landing zone's files, read into typed tables, one partition per month."""

from collections.abc import Callable, Mapping
from pathlib import Path

import dagster as dg
import pandas as pd

from mlops_assets.defs.metadata import OWNERS, table_metadata
from mlops_assets.defs.partitions import MONTHS, month_of
from mlops_assets.defs.policies import FILE_RETRY
from mlops_assets.landing import LandingError
from mlops_assets.landing_scan import content_version
from mlops_assets.ml import raw
from mlops_assets.resources import AssetRun, LandingZone, MlflowTracking

GROUP = "ingestion"


def raw_asset(
    partitions_def: dg.PartitionsDefinition | None,
) -> Callable[[Callable[..., dg.Output[pd.DataFrame]]], dg.AssetsDefinition]:
    """Declare a raw asset: the ingestion group's kinds, owners, code version and retries."""
    return dg.asset(
        group_name=GROUP,
        kinds={"pandas", "csv"},
        owners=OWNERS,
        code_version="2",
        retry_policy=FILE_RETRY,
        partitions_def=partitions_def,
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


def _materialize_month(
    context: dg.AssetExecutionContext,
    landing_zone: LandingZone,
    mlflow_tracking: MlflowTracking,
    table: str,
    schema: Mapping[str, str],
) -> dg.Output[pd.DataFrame]:
    import mlflow

    month = month_of(context)
    with mlflow_tracking.asset_run(context) as run:
        path = landing_zone.month_file(table, month)
        previous = landing_zone.previous_month_file(table, month)
        current = _read(path, schema)
        frame = raw.with_context(current, _read(previous, schema) if previous else None)
        context_rows = len(frame) - len(current)
        mlflow.log_params({"month": month, "file": path.name})
        mlflow.log_metrics({"row_count": len(current), "context_rows": context_rows})
    paths = [path] if previous is None else [previous, path]
    return _output(
        frame,
        paths,
        run,
        month_rows=dg.MetadataValue.int(len(current)),
        context_rows=dg.MetadataValue.int(context_rows),
    )


@raw_asset(MONTHS)
def raw_flights(
    context: dg.AssetExecutionContext, landing_zone: LandingZone, mlflow_tracking: MlflowTracking
) -> dg.Output[pd.DataFrame]:
    """A month's flights departing New York City, typed, after the previous 7 days."""
    return _materialize_month(context, landing_zone, mlflow_tracking, "flights", raw.FLIGHTS_SCHEMA)


@raw_asset(MONTHS)
def raw_weather(
    context: dg.AssetExecutionContext, landing_zone: LandingZone, mlflow_tracking: MlflowTracking
) -> dg.Output[pd.DataFrame]:
    """A month's hourly weather at the three airports, typed, after the previous 7 days."""
    return _materialize_month(context, landing_zone, mlflow_tracking, "weather", raw.WEATHER_SCHEMA)


@raw_asset(None)
def raw_planes(
    context: dg.AssetExecutionContext, landing_zone: LandingZone, mlflow_tracking: MlflowTracking
) -> dg.Output[pd.DataFrame]:
    """Aircraft attributes by tail number (maker, model, year, seats, engines)."""
    import mlflow

    with mlflow_tracking.asset_run(context) as run:
        path = landing_zone.planes_file()
        frame = _read(path, raw.PLANES_SCHEMA)
        mlflow.log_params({"file": path.name})
        mlflow.log_metrics({"row_count": len(frame)})
    return _output(frame, [path], run)
