"""The feature table: each flight as known at its prediction moment, with its label."""

import dagster as dg
import pandas as pd
from pydantic import Field

from mlops_assets.defs.metadata import OWNERS, table_metadata
from mlops_assets.defs.partitions import MONTHS, month_of
from mlops_assets.defs.policies import FILE_RETRY, REFRESH_WHEN_INPUTS_CHANGE
from mlops_assets.resources import MlflowTracking


class FeatureConfig(dg.Config):
    """How the feature table is built."""

    lead_time_minutes: int = Field(
        default=60,
        ge=0,
        le=24 * 60,
        description="Predict this many minutes before scheduled departure; only events before "
        "that moment enter the features.",
    )
    recent_departures: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Earlier departures averaged by the 'recent delay' features.",
    )


@dg.asset(
    group_name="features",
    kinds={"pandas"},
    owners=OWNERS,
    code_version="2",
    retry_policy=FILE_RETRY,
    partitions_def=MONTHS,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
)
def flight_features(
    context: dg.AssetExecutionContext,
    config: FeatureConfig,
    raw_flights: pd.DataFrame,
    raw_weather: pd.DataFrame,
    raw_planes: pd.DataFrame,
    mlflow_tracking: MlflowTracking,
) -> dg.Output[pd.DataFrame]:
    """A month's flights joined with origin weather, plane attributes and recent delays."""
    import mlflow

    from mlops_assets.ml.features import FeatureSettings, build_month_features

    month = month_of(context)
    with mlflow_tracking.asset_run(context) as run:
        mlflow.log_params({**config.model_dump(), "month": month})
        settings = FeatureSettings(
            lead_time_minutes=config.lead_time_minutes,
            recent_departures=config.recent_departures,
        )
        features, summary = build_month_features(
            month, raw_flights, raw_weather, raw_planes, settings
        )
        mlflow.log_metrics(
            {
                "feature_rows": summary.rows,
                "excluded_no_arrival": summary.excluded_no_arrival,
                "delayed_share": summary.delayed_share,
                "weather_coverage": summary.weather_coverage,
                "plane_coverage": summary.plane_coverage,
            }
        )
    return dg.Output(
        features,
        metadata={
            **table_metadata(features),
            "excluded_cancelled_or_diverted": dg.MetadataValue.int(summary.excluded_no_arrival),
            "delayed_share": dg.MetadataValue.float(summary.delayed_share),
            "weather_coverage": dg.MetadataValue.float(summary.weather_coverage),
            "plane_coverage": dg.MetadataValue.float(summary.plane_coverage),
            "lead_time_minutes": dg.MetadataValue.int(config.lead_time_minutes),
            **run.metadata(),
        },
    )
