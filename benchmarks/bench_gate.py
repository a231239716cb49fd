"""How often the promotion gate promotes a refit of the champion under another seed.

On three windows of 2013 (January -> February, January-February -> March, January-March
-> April), one small model per seed (41 seeds: 1,640 ordered pairs per window), the
seed mattering as the product's does (``mlops_assets.ml.gate_trials``): the share of pairs
the gate promotes with each lower bound of ``BOUNDS`` (its default, +0.001, among them), and
the share the rule it replaced would have promoted (the point estimate reaching +0.002). A
quality figure, so no ratio: the target is under 5% on every window. Prints JSON.
Usage: python -m benchmarks.bench_gate [--landing DIR] [--seeds N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mlops_assets.ml.gate_trials import false_promotions, refit_trials
from mlops_assets.ml.landed import month_features
from mlops_assets.ml.promotion import GateSettings
from mlops_assets.ml.training import compact_features, concat_months

WINDOWS = (
    (("2013-01",), "2013-02"),
    (("2013-01", "2013-02"), "2013-03"),
    (("2013-01", "2013-02", "2013-03"), "2013-04"),
)
"""(training months, held-out month) of each window."""
BOUNDS = (0.0, 0.0005, 0.001, 0.002)
"""The gate's ``min_lower_bound`` values measured (+0.001 is the default)."""


def main() -> None:
    """Print each window's false-promotion rates, as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, default=Path("data/landing"))
    parser.add_argument("--seeds", type=int, default=41)
    args = parser.parse_args()
    by_month = month_features(args.landing, ["2013-01", "2013-02", "2013-03", "2013-04"])
    results = {}
    for train_months, held_out in WINDOWS:
        started = time.perf_counter()
        train = concat_months([compact_features(by_month[m]) for m in train_months])
        refits = refit_trials(train, by_month[held_out], range(args.seeds))
        scored = false_promotions(refits).scored  # one bootstrap for every bound
        found = {
            bound: false_promotions(refits, GateSettings(min_lower_bound=bound), scored=scored)
            for bound in BOUNDS
        }
        results[f"{'-'.join(train_months)} -> {held_out}"] = {
            "pairs": found[0.0].pairs,
            "gate_by_lower_bound": {str(b): round(f.rate, 4) for b, f in found.items()},
            "point_rule": round(found[0.0].point_rule_rate, 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
    print(json.dumps({"seeds": args.seeds, "windows": results}, indent=2))


if __name__ == "__main__":
    main()
