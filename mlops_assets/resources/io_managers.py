"""IO managers as the code location binds them: DataFrames as Parquet, small records as JSON.

Both store under one base path: a local folder by default, any fsspec URL (``s3://…``,
``gs://…``) in production. The file-level work is in :mod:`mlops_assets.resources.lake`,
imported when a run builds its IO manager: loading the code location imports neither it nor
universal-pathlib.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from mlops_assets.runtime import settings


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
