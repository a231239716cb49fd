"""The test suite of mlops_assets (``make test``)."""

import os

# The suite's workers, and the runs and servers they start, share the machine's cores.
# OpenMP's threads (scikit-learn's boosting) spin while they wait for work by default, burning
# the cores the other workers need: four model test files on two workers took 188 and 183
# CPU-seconds waiting passively, 214 and 241 spinning (the models are the same). Set before
# scikit-learn loads OpenMP, and inherited by every process the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
