"""Stored partitions of an asset, read when used: the input type of the assets that need many.

Kept apart from the IO managers that build them (:mod:`mlops_assets.resources.lake`) so that
assets, ops and the lake import it without importing one another.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

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

    def location(self, partition: str) -> str:
        """Where the partition is stored (a path, or a URI for an object store)."""
        return str(self._path(partition))

    def footer(self, partition: str) -> tuple[int, tuple[tuple[str, str], ...]]:
        """A partition's row count and its columns' names and Arrow types, from the footer."""
        import pyarrow.parquet as pq

        with self._path(partition).open("rb") as handle:
            parquet = pq.ParquetFile(handle)
            schema = parquet.schema_arrow
            columns = tuple((field.name, str(field.type)) for field in schema)
            return int(parquet.metadata.num_rows), columns

    def count_rows(self, partition: str) -> int:
        """A partition's number of rows, from the Parquet footer (no data is read)."""
        return self.footer(partition)[0]


class PartitionStore(Protocol):
    """What an op that reads stored partitions needs of the IO manager (the Parquet one)."""

    def stored_partitions(self, asset: str, partitions: Sequence[str]) -> StoredPartitions:
        """Stored partitions of ``asset``, read on demand."""
        ...
