"""The code location: everything under ``mlops_assets/defs``, bound to its resources."""

import warnings

import dagster as dg

from mlops_assets import defs as defs_package
from mlops_assets.resources import build_resources
from mlops_assets.runtime import gc_policy, profiles, settings

# The one place the environment is chosen ($MLOPS_ENV, default local).
environment = settings.environment()


def _found_in_defs_package() -> dg.Definitions:
    with warnings.catch_warnings():
        # A preview in dagster 1.13.27. load_from_defs_folder finds the same definitions and
        # adds a catalog of every component type installed, for a project that has none:
        # ~0.2 s of every load (webserver, daemon, each run and step).
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.load_definitions_from_package_module(defs_package)


# Built once at import: Dagster re-invokes a ``@dg.definitions`` function each time it
# reconstructs the code location (every step of a run), which cost ~0.18 s each.
defs = dg.Definitions.merge(
    _found_in_defs_package(),
    dg.Definitions(
        resources=build_resources(),
        executor=profiles.executor_for(environment),
    ),
)

# Dagster and this module graph live as long as the process: keep them out of every
# collection, and out of the final one at exit (measured in mlops_assets/runtime/gc_policy.py).
gc_policy.freeze_long_lived_objects()
gc_policy.skip_collection_at_exit()
