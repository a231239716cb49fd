"""Data and code versions, and the stored partitions a run reads as MLflow datasets.

The instance's record of materializations (latest events, data versions), the data version of
frames, and the partitions read as datasets digested by their data versions.
"""

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.defs.shared.keys import CODE_VERSIONS, DATA_VERSION_TAG, MODEL_LINEAGE
from mlops_assets.resources.stored_partitions import StoredPartitions
from mlops_assets.tracking.datasets import PartitionDataset

if TYPE_CHECKING:
    import pandas as pd


def frame_version(frame: "pd.DataFrame") -> str:
    """A frame's data version: 32 hexadecimal characters hashing its columns, types and rows.

    Equal frames get equal versions, so rebuilding a partition into the same rows leaves its
    consumers up to date; any changed value, column or type changes it. 32 characters (128
    bits) so that the version is also an MLflow dataset digest (at most 36).
    """
    import pandas as pd

    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def batch_version(frames: "Mapping[str, pd.DataFrame]", code_version: str) -> str:
    """The data version of a step's months and of the code that built them (32 characters).

    Dagster records one data version for all the partitions of a step, so it hashes every
    month's :func:`frame_version`, and the asset's code version: bumping it gives a new data
    version, and the downstream assets show unsynced, as with Dagster's own versions. The
    same rows from the same code give the same version: re-reading unchanged (or only
    reformatted) files leaves the downstream in sync.
    """
    lines = [f"code:{code_version}"]
    lines += [f"{month}:{frame_version(frame)}" for month, frame in sorted(frames.items())]
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()


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


def partition_datasets(
    instance: dg.DagsterInstance, stored: StoredPartitions, partitions: Iterable[str]
) -> dict[str, PartitionDataset]:
    """Each stored partition read, as an MLflow dataset digested by its current data version.

    Raises:
        dg.Failure: When a partition has no data version the digest can be (never
            materialized, or materialized before data versions were 32 characters): it names
            the partition to materialize again.
    """
    key = dg.AssetKey(stored.asset)
    datasets = {}
    for partition, version in partition_data_versions(instance, key, partitions).items():
        rows, columns = stored.footer(partition)
        try:
            datasets[partition] = PartitionDataset(
                stored.asset, partition, version or "", stored.location(partition), rows, columns
            )
        except ValueError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from error
    return datasets
