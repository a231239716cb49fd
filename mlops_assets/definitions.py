"""The code location: everything under ``mlops_assets/defs``, bound to its resources."""

from pathlib import Path

import dagster as dg

from mlops_assets import gc_policy
from mlops_assets.resources import build_resources

# Built once at import: Dagster re-invokes a ``@dg.definitions`` function each time it
# reconstructs the code location (every step of a run), which cost ~0.18 s each.
# In-process execution: a step in a new process re-imports dagster, pandas, mlflow and
# scikit-learn (~5 s), more than a 2-core machine gains from running steps in parallel.
defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(resources=build_resources(), executor=dg.in_process_executor),
)

# Dagster and this module graph live as long as the process: keep them out of every
# collection, and out of the final one at exit (measured in mlops_assets/gc_policy.py).
gc_policy.freeze_long_lived_objects()
gc_policy.skip_collection_at_exit()
