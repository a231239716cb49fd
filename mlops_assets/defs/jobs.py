"""Jobs: the whole pipeline, its data half and its model half."""

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

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.groups("training", "evaluation", "registry"),
    description="Train, evaluate and register the model on the features already built.",
)
