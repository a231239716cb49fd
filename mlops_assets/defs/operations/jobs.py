"""Jobs: a month's data, the model, and a month's scoring."""

import dagster as dg

# feature_drift measures the month against @champion as soon as it lands (it materializes
# nothing while there is no champion) and again whenever the month is scored.
MONTH_ASSETS = dg.AssetSelection.assets(
    "raw_flights", "raw_weather", "raw_planes", "flight_features", "feature_drift"
)
MODEL_ASSETS = dg.AssetSelection.groups("training", "evaluation", "registry")

month_job = dg.define_asset_job(
    "month_job",
    selection=MONTH_ASSETS,
    description="Read one month's landed files and the planes file, build that month's "
    "features and measure their drift against @champion's training rows.",
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=MODEL_ASSETS,
    description="Train, evaluate and register the model on every month's features.",
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.assets("flight_delay_predictions", "feature_drift"),
    description="Score one month's flights with @champion and measure the month's drift "
    "against its training rows.",
)
