"""IO managers as the code location binds them: DataFrames as Parquet, small records as JSON.

Both store under one base path: a local folder by default, any fsspec URL (``s3://…``,
``gs://…``) in production. The file-level work is in :mod:`mlops_assets.resources.lake`,
imported when a run builds its IO manager: loading the code location imports neither it nor
universal-pathlib.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import dagster as dg
from pydantic import Field

from mlops_assets.runtime import settings

if TYPE_CHECKING:
    import pandas as pd
    from upath import UPath


class StoredPartitions(Mapping[str, "pd.DataFrame"]):
    """Stored partitions of an asset, each read from storage only when asked for.

    The input type of an asset that needs many months but never all of them in memory at
    once (``trained_model`` reads them one by one, compact and sampled; ``model_evaluation``
    reads the held-out month only). Indexing reads a whole partition;
    :meth:`read` reads some columns; :meth:`count_rows` reads the file's footer only.
    """

    def __init__(self, asset: str, paths: Mapping[str, UPath]) -> None:
        self.asset = asset
        self._paths = dict(paths)

    def __getitem__(self, partition: str) -> pd.DataFrame:
        return self.read(partition)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._paths))

    def __len__(self) -> int:
        return len(self._paths)

    def _path(self, partition: str) -> UPath:
        if partition not in self._paths:
            raise KeyError(f"{self.asset} has no partition {partition!r} in this input")
        return self._paths[partition]

    def read(self, partition: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One partition (only ``columns`` when given)."""
        import pandas as pd

        with self._path(partition).open("rb") as handle:
            return pd.read_parquet(handle, columns=None if columns is None else list(columns))

    def count_rows(self, partition: str) -> int:
        """A partition's number of rows, from the Parquet footer (no data is read)."""
        import pyarrow.parquet as pq

        with self._path(partition).open("rb") as handle:
            return int(pq.ParquetFile(handle).metadata.num_rows)


class PartitionStore(Protocol):
    """What an op that reads stored partitions needs of the IO manager (the Parquet one)."""

    def stored_partitions(self, asset: str, partitions: Sequence[str]) -> StoredPartitions:
        """Stored partitions of ``asset``, read on demand."""
        ...


class LakeIOManager(dg.ConfigurableIOManagerFactory):
    """Stores DataFrames as Parquet files under a base path (local folder or fsspec URL)."""

    base_path: str | None = Field(
        default=None, description="Folder or URL; empty means <data dir>/lake."
    )

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.UPathIOManager:
        """Build the Parquet IO manager."""
        from upath import UPath

        from mlops_assets.resources.lake import ParquetIOManager

        return ParquetIOManager(base_path=UPath(self.base_path or settings.lake_dir()))


class RecordIOManager(dg.ConfigurableIOManagerFactory):
    """Stores small pydantic records (model references, reports) as JSON under a base path."""

    base_path: str | None = Field(
        default=None, description="Folder or URL; empty means <data dir>/lake."
    )

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.UPathIOManager:
        """Build the JSON IO manager."""
        from upath import UPath

        from mlops_assets.resources.lake import JsonIOManager

        return JsonIOManager(base_path=UPath(self.base_path or settings.lake_dir()))
