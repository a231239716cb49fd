"""mlops_assets: a Dagster-native, asset-based ML pipeline with MLflow, on real flight data."""
