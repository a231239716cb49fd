"""Raw assets: the landing zone's files, read into typed tables."""

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import dagster as dg
import pandas as pd

from mlops_assets.defs.metadata import OWNERS, table_metadata
from mlops_assets.defs.policies import FILE_RETRY
from mlops_assets.landing import LandingError
from mlops_assets.landing_scan import content_version
from mlops_assets.ml import raw
from mlops_assets.resources import LandingZone, MlflowTracking

GROUP = "ingestion"


def raw_asset(compute: Callable[..., dg.Output[pd.DataFrame]]) -> dg.AssetsDefinition:
    """Declare a raw asset: the ingestion group's kinds, owners, code version and retries."""
    return dg.asset(
        group_name=GROUP,
        kinds={"pandas", "csv"},
        owners=OWNERS,
        code_version="1",
        retry_policy=FILE_RETRY,
    )(compute)


def _materialize(
    context: dg.AssetExecutionContext,
    mlflow_tracking: MlflowTracking,
    find_files: Callable[[], list[Path]],
    schema: Mapping[str, str],
) -> dg.Output[pd.DataFrame]:
    import mlflow

    with mlflow_tracking.asset_run(context) as run:
        paths = find_files()
        version = content_version(paths)
        try:
            frame = raw.concat_typed(raw.read_raw_csv(path, schema) for path in paths)
        except LandingError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from error
        mlflow.log_params(
            {"files": len(paths), "first_file": paths[0].name, "last_file": paths[-1].name}
        )
        mlflow.log_metrics({"row_count": len(frame), "column_count": frame.shape[1]})
    return dg.Output(
        frame,
        data_version=dg.DataVersion(version),
        metadata={
            **table_metadata(frame),
            "files": dg.MetadataValue.json([str(path) for path in paths]),
            "content_sha256": dg.MetadataValue.text(version),
            **run.metadata(),
        },
    )


@raw_asset
def raw_flights(
    context: dg.AssetExecutionContext, landing_zone: LandingZone, mlflow_tracking: MlflowTracking
) -> dg.Output[pd.DataFrame]:
    """Every landed flight departing New York City, with typed columns."""
    files = partial(landing_zone.monthly_files, "flights")
    return _materialize(context, mlflow_tracking, files, raw.FLIGHTS_SCHEMA)


@raw_asset
def raw_weather(
    context: dg.AssetExecutionContext, landing_zone: LandingZone, mlflow_tracking: MlflowTracking
) -> dg.Output[pd.DataFrame]:
    """Hourly weather observations at the three New York airports, with typed columns."""
    files = partial(landing_zone.monthly_files, "weather")
    return _materialize(context, mlflow_tracking, files, raw.WEATHER_SCHEMA)


@raw_asset
def raw_planes(
    context: dg.AssetExecutionContext, landing_zone: LandingZone, mlflow_tracking: MlflowTracking
) -> dg.Output[pd.DataFrame]:
    """Aircraft attributes by tail number (maker, model, year, seats, engines)."""
    return _materialize(
        context, mlflow_tracking, lambda: [landing_zone.planes_file()], raw.PLANES_SCHEMA
    )
