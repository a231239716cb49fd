-- Run once by the postgres image, when its data volume is empty, as $POSTGRES_USER (dagster).
-- The `dagster` database (runs, event logs, schedules, pool slots) is POSTGRES_DB; MLflow keeps
-- its runs, metrics and model registry in a database of its own on the same server.
CREATE DATABASE mlflow OWNER dagster;
