"""The landing-zone resource: the folder that the raw assets read."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from mlops_assets.landing import layout
from mlops_assets.runtime import settings


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

    def month_file(self, table: str, month: str) -> Path:
        """One month's file of ``table``.

        Raises:
            dg.Failure: When that month has not landed (or is still being copied).
        """
        path = layout.monthly_file(self.root(), table, month)
        if not path.is_file():
            raise dg.Failure(
                allow_retries=False,
                description=(
                    f"{path} has not landed: month {month} of {table} is not in the landing "
                    "zone. Land it (temporary name, then rename) and the landing_zone_sensor "
                    "requests it; or run `mlops-assets seed`."
                ),
            )
        return path

    def previous_month_file(self, table: str, month: str) -> Path | None:
        """The ``table`` file of the month before ``month`` when that month is complete.

        The rule is :func:`~mlops_assets.landing.layout.month_input_names` (the landing-zone
        sensor versions a month's inputs with it); None when the month reads its own file only.
        """
        root = self.root()
        names = layout.month_input_names(table, month, lambda name: (root / name).is_file())
        return root / names[0] if len(names) > 1 else None

    def planes_file(self) -> Path:
        """The planes reference file.

        Raises:
            dg.Failure: When it has not landed.
        """
        path = self.root() / layout.PLANES_FILE
        if not path.exists():
            raise dg.Failure(
                allow_retries=False,
                description=f"{path} is missing. Run `mlops-assets seed` to land the planes file.",
            )
        return path
