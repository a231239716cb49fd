"""The code location: everything under ``mlops_assets/defs``, bound to its resources."""

from pathlib import Path

import dagster as dg

from mlops_assets import gc_policy, profiles, settings
from mlops_assets.resources import build_resources

# The one place the environment is chosen ($MLOPS_ENV, default local).
environment = settings.environment()

# Built once at import: Dagster re-invokes a ``@dg.definitions`` function each time it
# reconstructs the code location (every step of a run), which cost ~0.18 s each.
defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(
        resources=build_resources(),
        executor=profiles.executor_for(environment),
    ),
)

# Dagster and this module graph live as long as the process: keep them out of every
# collection, and out of the final one at exit (measured in mlops_assets/gc_policy.py).
gc_policy.freeze_long_lived_objects()
gc_policy.skip_collection_at_exit()
