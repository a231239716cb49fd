"""Jobs: the whole pipeline, and the data half of it."""

import dagster as dg

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.all(),
    description="Ingest, build features, train, evaluate and register the flight-delay model.",
)

data_job = dg.define_asset_job(
    "data_job",
    selection=dg.AssetSelection.groups("ingestion", "features"),
    description="Read the landing zone and rebuild the feature table.",
)
