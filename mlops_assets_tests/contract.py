"""What the tests share: the public asset keys, and a run config that trains quickly."""

ASSET_KEYS = (
    "raw_flights",
    "raw_weather",
    "raw_planes",
    "flight_features",
    "trained_model",
    "model_evaluation",
    "registered_model",
    "flight_delay_predictions",
)

FAST_RUN_CONFIG = {
    "ops": {
        "trained_model": {"config": {"max_iter": 30, "trials": 1}},
        "model_evaluation": {"config": {"importance_rows": 500}},
    }
}
