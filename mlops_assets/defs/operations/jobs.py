"""Jobs: a month's data, the model, and a month's scoring."""

import dagster as dg

from mlops_assets.defs.shared.keys import (
    FEATURE_DRIFT,
    FLIGHT_DELAY_PREDICTIONS,
    FLIGHT_FEATURES,
    RAW_FLIGHTS,
    RAW_PLANES,
    RAW_WEATHER,
)

# feature_drift measures the month against @champion as soon as it lands (it materializes
# nothing while there is no champion) and again whenever the month is scored.
MONTH_ASSETS = dg.AssetSelection.assets(
    RAW_FLIGHTS, RAW_WEATHER, RAW_PLANES, FLIGHT_FEATURES, FEATURE_DRIFT
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
    selection=dg.AssetSelection.assets(FLIGHT_DELAY_PREDICTIONS, FEATURE_DRIFT),
    description="Score one month's flights with @champion and measure the month's drift "
    "against its training rows.",
)
