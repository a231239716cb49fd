"""Reading the instance's record of materializations: latest events, data and code versions."""

from collections.abc import Iterable

import dagster as dg

DATA_VERSION_TAG = "dagster/data_version"


def latest_materialization(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None
) -> dg.EventLogRecord | None:
    """The latest materialization of ``key`` (of one partition, when given)."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=key, asset_partitions=[partition] if partition else None
    )
    records = instance.fetch_materializations(records_filter, limit=1).records
    return records[0] if records else None


def data_version(record: dg.EventLogRecord | None) -> str | None:
    """The data version a materialization recorded, or None."""
    materialization = record.asset_materialization if record else None
    tags = materialization.tags if materialization else None
    return tags.get(DATA_VERSION_TAG) if tags else None


def registered_model_data_version(instance: dg.DagsterInstance) -> str | None:
    """The data version ``registered_model`` records now: ``champion-<version>`` (or None)."""
    return data_version(latest_materialization(instance, dg.AssetKey("registered_model")))


def partition_data_versions(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: Iterable[str]
) -> dict[str, str | None]:
    """The current data version of each partition of ``key`` (None: never materialized)."""
    return {p: data_version(latest_materialization(instance, key, p)) for p in partitions}


def model_code_versions() -> dict[str, str]:
    """The code version of every asset from the landing zone to the registered model.

    Read from the asset definitions themselves (imported here, not at module level, since
    they import this module), so ops and assets alike can record or compare them.
    """
    from mlops_assets.defs.features import flight_features
    from mlops_assets.defs.ingestion import raw_data
    from mlops_assets.defs.model import evaluation, registry, training

    assets = [
        raw_data.raw_flights,
        raw_data.raw_weather,
        raw_data.raw_planes,
        flight_features.flight_features,
        training.trained_model,
        evaluation.model_evaluation,
        registry.registered_model,
    ]
    return {
        key.to_user_string(): version
        for asset in assets
        for key, version in asset.code_versions_by_key.items()
        if version
    }
