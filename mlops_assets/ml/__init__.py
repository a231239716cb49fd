"""Pure ML and data logic: plain typed functions that never import dagster."""
