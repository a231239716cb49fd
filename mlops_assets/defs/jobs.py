"""Jobs: one month's data, the planes reference, and the model."""

import dagster as dg

MONTH_ASSETS = dg.AssetSelection.assets("raw_flights", "raw_weather", "flight_features")
MODEL_ASSETS = dg.AssetSelection.groups("training", "evaluation", "registry")

month_job = dg.define_asset_job(
    "month_job",
    selection=MONTH_ASSETS,
    description="Read one month's landed files and build that month's features.",
)

planes_job = dg.define_asset_job(
    "planes_job",
    selection=dg.AssetSelection.assets("raw_planes"),
    description="Read the planes reference file.",
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=MODEL_ASSETS,
    description="Train, evaluate and register the model on every month's features.",
)

scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.assets("flight_delay_predictions"),
    description="Score one month's flights with @champion.",
)
