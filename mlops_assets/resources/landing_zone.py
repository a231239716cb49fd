"""The landing-zone resource: the folder that the raw assets read."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from mlops_assets import landing, settings


class LandingZone(dg.ConfigurableResource):
    """Raw files as the feed delivers them (one file per month for flights and weather)."""

    path: str | None = Field(
        default=None,
        description="Landing-zone folder; empty means <data dir>/landing "
        "(data dir: $MLOPS_DATA_DIR or ./data).",
    )

    def root(self) -> Path:
        """The landing-zone folder."""
        return Path(self.path).expanduser().resolve() if self.path else settings.landing_dir()

    def monthly_files(self, table: str) -> list[Path]:
        """Every landed month's file of ``table``, oldest first.

        Raises:
            dg.Failure: When nothing has landed, telling the operator how to seed.
        """
        months = landing.landed_months(self.root(), table)
        if not months:
            raise dg.Failure(
                allow_retries=False,
                description=(
                    f"No {table} files in the landing zone {self.root() / table}. "
                    "Run `mlops-assets seed` (or `make seed`) to land the NYC flights 2013 data."
                ),
            )
        return [landing.monthly_file(self.root(), table, month) for month in months]

    def planes_file(self) -> Path:
        """The planes reference file.

        Raises:
            dg.Failure: When it has not landed.
        """
        path = self.root() / landing.PLANES_FILE
        if not path.exists():
            raise dg.Failure(
                allow_retries=False,
                description=f"{path} is missing. Run `mlops-assets seed` to land the planes file.",
            )
        return path
