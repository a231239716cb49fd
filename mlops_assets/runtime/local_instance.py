"""Prepare a Dagster home for the embedded local instance (no dagster import)."""

from __future__ import annotations

import shutil
from pathlib import Path

# Where Dagster records that its "join the community" pop-up was shown on this instance:
# the file that the UI's ``setNuxSeen`` GraphQL mutation writes (dagster/_core/nux.py).
# The browser test fails if the pop-up shows up again, so a change in Dagster is caught.
NUX_FILE = Path(".nux") / "nux.yaml"


def prepare_dagster_home(home: Path, config_template: Path) -> list[str]:
    """Give ``home`` the project's ``dagster.yaml`` and dismiss the first-run pop-up.

    An instance's own ``dagster.yaml`` is never overwritten. Returns what was done.
    """
    if not config_template.is_file():
        raise FileNotFoundError(f"{config_template}: instance configuration template not found")
    done = []
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if config.exists():
        done.append(f"{config}: kept")
    else:
        shutil.copyfile(config_template, config)
        done.append(f"{config}: written from {config_template}")
    nux = home / NUX_FILE
    if not nux.exists():
        nux.parent.mkdir(parents=True, exist_ok=True)
        nux.write_text("seen: 1\n", encoding="utf-8")
        done.append(f"{nux}: community pop-up marked as seen")
    return done
