"""Reading the instance's record of materializations: latest events, data and code versions."""

from collections.abc import Iterable

import dagster as dg

from mlops_assets.defs.shared.keys import CODE_VERSIONS, DATA_VERSION_TAG, MODEL_LINEAGE


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


def partition_data_versions(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: Iterable[str]
) -> dict[str, str | None]:
    """The current data version of each partition of ``key`` (None: never materialized)."""
    return {p: data_version(latest_materialization(instance, key, p)) for p in partitions}


def model_code_versions() -> dict[str, str]:
    """The code version of every asset from the landing zone to the registered model.

    The versions the assets declare (:data:`~mlops_assets.defs.shared.keys.CODE_VERSIONS`),
    so ops and assets alike can record or compare them without importing one another.
    """
    return {key.to_user_string(): CODE_VERSIONS[key] for key in MODEL_LINEAGE}
