"""The lake's files: Parquet frames and JSON records under a base path (local or fsspec URL).

The IO managers that :mod:`mlops_assets.resources.io_managers` builds for each run, on
universal-pathlib through Dagster's ``UPathIOManager``.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import BaseModel
from upath import UPath

from mlops_assets.resources.stored_partitions import StoredPartitions

if TYPE_CHECKING:
    from collections.abc import Sequence


def _write_atomically(path: UPath, payload: bytes) -> None:
    """Write to a temporary name beside ``path``, then rename it into place.

    Runs of different months read one another's partitions (the month before) while they
    run in parallel: a reader sees the old file or the new one, never half of one. (On object
    stores the rename is a copy; there, each object is written whole anyway.)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_bytes(payload)
    temporary.rename(path)


def _require_stored(context: dg.InputContext, path: UPath) -> None:
    """Fail at once, naming the asset, when an input was never materialized.

    A missing file is not a transient fault: retrying would only delay the same error.
    """
    if path.exists():
        return
    asset = context.asset_key.to_user_string()
    which = f" (partition {path.stem})" if context.has_asset_partitions else ""
    raise dg.Failure(
        allow_retries=False,
        description=f"input {asset}{which} is not stored at {path}: materialize {asset}"
        f"{which} first",
    )


class ParquetIOManager(dg.UPathIOManager):
    """Parquet on disk, with a memory of the frames this run wrote or read.

    With the in-process executor, a frame written by one step is handed to the next ones
    without re-reading its file (a month run: raw flights and weather to the features);
    files are still written, so other runs, other processes and re-execution read them from
    storage. Inputs declared :class:`StoredPartitions` bypass that memory: they are read
    when used, so that a run over many months never holds all of them.
    """

    extension = ".parquet"

    def __init__(self, base_path: UPath) -> None:
        super().__init__(base_path=base_path)
        self._frames: dict[str, Any] = {}

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Store a frame; for a month-partitioned asset, each month of the step's batch apart.

        A partitioned step returns a mapping of month to frame (a batch of one for a single
        month); each month is written to its own file, so one month can be rerun alone later.
        """
        if not context.has_asset_partitions:
            super().handle_output(context, obj)
            return
        paths = self._get_paths_for_partitions(context)
        asset = context.asset_key.to_user_string()
        if not isinstance(obj, Mapping) or set(obj) != set(paths):
            got = sorted(obj) if isinstance(obj, Mapping) else type(obj).__name__
            raise TypeError(
                f"{asset}: expected a frame per partition of the step ({sorted(paths)}), got {got}"
            )
        for partition, path in paths.items():
            self.dump_to_path(context, obj[partition], path)
        first = next(iter(paths.values()))
        stored = first if len(paths) == 1 else first.parent
        context.add_output_metadata({"path": dg.MetadataValue.path(str(stored))})

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        """Write a DataFrame as Parquet, atomically, and remember it for this run."""
        import pandas as pd

        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a DataFrame, got {type(obj)}"
            )
        _write_atomically(path, obj.to_parquet(index=False))
        self._frames[str(path)] = obj

    def load_partitions(self, context: dg.InputContext) -> Any:
        """Partitions in the shape the input is declared with.

        One partition as a frame; several, or any for a ``dict`` input, as month -> frame;
        for a :class:`StoredPartitions` input, the stored files, read later on demand.
        Dagster hands a single partition over bare even to a downstream asset that asks for a
        mapping of partitions; this keeps the shape the input is declared with.
        """
        keys = context.asset_partition_keys
        declared = context.dagster_type.typing_type
        if declared is StoredPartitions:
            paths = self._get_paths_for_partitions(context)
            for path in paths.values():
                _require_stored(context, path)
            return StoredPartitions(context.asset_key.to_user_string(), paths)
        loaded = super().load_partitions(context)
        if len(keys) == 1 and (declared is dict or typing.get_origin(declared) is dict):
            return {keys[0]: loaded}
        return loaded

    def stored_partitions(self, asset: str, partitions: Sequence[str]) -> StoredPartitions:
        """Stored partitions of ``asset``, read outside an asset step (e.g. by an op).

        Raises:
            FileNotFoundError: Naming the first of ``partitions`` that was never stored.
        """
        paths = {
            partition: self._with_extension(
                self.make_safe_partition_path(self._base_path / asset, partition)
            )
            for partition in partitions
        }
        for partition, path in paths.items():
            if not path.is_file():
                raise FileNotFoundError(f"{path}: partition {partition} of {asset} is not stored")
        return StoredPartitions(asset, paths)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        """The frame this run wrote or read at ``path``, else read from storage."""
        import pandas as pd

        if str(path) in self._frames:
            return self._frames[str(path)]
        _require_stored(context, path)
        with path.open("rb") as handle:
            frame = pd.read_parquet(handle)
        self._frames[str(path)] = frame
        return frame


class JsonIOManager(dg.UPathIOManager):
    """Small pydantic records as JSON, read back as the input's declared model."""

    extension = ".json"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        """Write the record as indented JSON, atomically."""
        if not isinstance(obj, BaseModel):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a pydantic model, got {type(obj)}"
            )
        _write_atomically(path, obj.model_dump_json(indent=2).encode())

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        """The record, validated as the input's declared pydantic model."""
        model_type = context.dagster_type.typing_type
        if not (isinstance(model_type, type) and issubclass(model_type, BaseModel)):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: annotate the input with a pydantic model"
            )
        _require_stored(context, path)
        return model_type.model_validate_json(path.read_text())
