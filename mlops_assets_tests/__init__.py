"""The test suite of mlops_assets (``make test``)."""

import os

# The suite's workers, and the runs and servers they start, share the machine's cores.
# OpenMP's threads (scikit-learn's boosting) spin while they wait for work by default, burning
# the cores the other workers need: waiting passively took 15% off the CPU time of the model
# tests run two at a time (the models are the same). Set before scikit-learn loads OpenMP, and
# inherited by every process the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
