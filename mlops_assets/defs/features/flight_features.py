"""The feature table: each flight as known at its prediction moment, with its label."""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from mlops_assets.defs.shared import checks
from mlops_assets.defs.shared.keys import CODE_VERSIONS, FLIGHT_FEATURES
from mlops_assets.defs.shared.lineage import batch_version
from mlops_assets.defs.shared.metadata import table_metadata
from mlops_assets.defs.shared.partitions import month_asset, month_step, months_of
from mlops_assets.defs.shared.policies import FILE_RETRY, REFRESH_WHEN_INPUTS_CHANGE
from mlops_assets.defs.shared.tables import DataFrame, MonthFrames, table_type
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
    min_delayed_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Refuse a month with fewer delayed flights (2013: 13.7% to 33.5%).",
    )
    max_delayed_share: float = Field(
        default=0.6, ge=0, le=1, description="Refuse a month with more delayed flights."
    )
    min_weather_coverage: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Refuse a month where fewer flights have origin weather (2013: 97.1% or more).",
    )
    max_null_share: float = Field(
        default=0.1, ge=0, le=1, description="Warn when a feature has more missing values."
    )
    null_share_limits: dict[str, float] = Field(
        # 2013's worst months: plane attributes 18% missing (tails not in the planes table),
        # previous leg 52% (first leg of the day; its arrival 54%), wind_gust 86%, pressure
        # 18%, flight-number history 10% (January).
        default={
            **{
                column: 0.3
                for column in (
                    "tailnum",
                    "plane_manufacturer",
                    "plane_type",
                    "plane_engine",
                    "plane_age",
                    "plane_seats",
                    "plane_engines",
                )
            },
            "tail_prev_leg_delay": 0.7,
            "tail_sched_gap_minutes": 0.7,
            **dict.fromkeys(
                ("tail_prev_arr_delay", "tail_prev_arr_exact", "tail_turn_slack_minutes"), 0.7
            ),
            # January has no December 2012 behind it: its first days have no history.
            **{
                f"{group}_hist_{measure}": 0.3
                for group in ("flight", "route_hour")
                for measure in ("arr_delay", "delayed_share")
            },
            "wind_gust": 0.97,
            "pressure": 0.35,
        },
        description="Per-column limits that replace max_null_share.",
    )


@month_asset(
    "flight_features",
    group_name="features",
    kinds={"pandas"},
    code_version=CODE_VERSIONS[FLIGHT_FEATURES],
    retry_policy=FILE_RETRY,
    automation_condition=REFRESH_WHEN_INPUTS_CHANGE,
    dagster_type=table_type("flight_features"),
    check_specs=checks.check_specs("flight_features", checks.FEATURE_CHECKS),
)
def flight_features(
    context: dg.AssetExecutionContext,
    config: FeatureConfig,
    raw_flights: MonthFrames,
    raw_weather: MonthFrames,
    raw_planes: MonthFrames,
    mlflow_tracking: MlflowTracking,
) -> Iterator[dg.AssetCheckEvaluation | dg.Output[MonthFrames]]:
    """A month's flights joined with origin weather, plane attributes and recent delays."""
    from mlops_assets.ml import quality, schemas
    from mlops_assets.ml.features import FeatureSettings, build_month_features

    months = months_of(context)
    settings = FeatureSettings(
        lead_time_minutes=config.lead_time_minutes, recent_departures=config.recent_departures
    )
    built: dict[str, DataFrame] = {}
    outcomes = {}
    with mlflow_tracking.asset_run(context) as run:
        run.log_params({**config.model_dump(), "months": ",".join(months)})
        for month in months:
            features, summary = build_month_features(
                month, raw_flights[month], raw_weather[month], raw_planes[month], settings
            )
            run.log_metrics(
                {
                    "feature_rows": summary.rows,
                    "excluded_no_arrival": summary.excluded_no_arrival,
                    "delayed_share": summary.delayed_share,
                    "weather_coverage": summary.weather_coverage,
                    "plane_coverage": summary.plane_coverage,
                },
                step=month_step(month),
            )
            source = f"flight_features {month}"
            outcomes[month] = [
                quality.schema_outcome(features, schemas.FLIGHT_FEATURES, source),
                quality.duplicates_outcome(features, schemas.FEATURE_KEY, source),
                quality.share_outcome(
                    "label_rate",
                    summary.delayed_share,
                    (config.min_delayed_share, config.max_delayed_share),
                    "the share of flights arriving 15+ minutes late",
                    source,
                ),
                quality.share_outcome(
                    "weather_coverage",
                    summary.weather_coverage,
                    (config.min_weather_coverage, 1.0),
                    "the share of flights with origin weather",
                    source,
                ),
                quality.null_rates_outcome(
                    features, config.null_share_limits, config.max_null_share, source
                ),
            ]
            yield from checks.month_evaluations(context.asset_key, month, outcomes[month])
            context.add_asset_metadata(
                {
                    **table_metadata(features),
                    "excluded_cancelled_or_diverted": dg.MetadataValue.int(
                        summary.excluded_no_arrival
                    ),
                    "delayed_share": dg.MetadataValue.float(summary.delayed_share),
                    "weather_coverage": dg.MetadataValue.float(summary.weather_coverage),
                    "plane_coverage": dg.MetadataValue.float(summary.plane_coverage),
                },
                partition_key=month,
            )
            built[month] = features
        checks.refuse_months(outcomes, kept=f"the stored features of {', '.join(months)}")
    # The data version hashes the rows and the code version (one for all the months of the
    # step, as Dagster records it); it is the MLflow dataset digest wherever they are read.
    yield dg.Output(
        built,
        output_name="flight_features",
        data_version=dg.DataVersion(batch_version(built, CODE_VERSIONS[FLIGHT_FEATURES])),
        metadata={
            "lead_time_minutes": dg.MetadataValue.int(config.lead_time_minutes),
            **run.metadata(),
        },
    )
