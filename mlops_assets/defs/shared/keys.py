"""Asset keys, code versions, the drift check's key and the run tags: named once, imported.

An asset's key comes from its function's name; ``test_definitions.py`` checks that every key
here names an asset of the code location, and that each asset declares the code version
given here.
"""

import dagster as dg

RAW_FLIGHTS = dg.AssetKey("raw_flights")
RAW_WEATHER = dg.AssetKey("raw_weather")
RAW_PLANES = dg.AssetKey("raw_planes")
FLIGHT_FEATURES = dg.AssetKey("flight_features")
TRAINED_MODEL = dg.AssetKey("trained_model")
MODEL_EVALUATION = dg.AssetKey("model_evaluation")
REGISTERED_MODEL = dg.AssetKey("registered_model")
FLIGHT_DELAY_PREDICTIONS = dg.AssetKey("flight_delay_predictions")
FEATURE_DRIFT = dg.AssetKey("feature_drift")

CODE_VERSIONS = {
    RAW_FLIGHTS: "3",
    RAW_WEATHER: "3",
    RAW_PLANES: "3",
    FLIGHT_FEATURES: "4",  # 4: arrivals known once landed, 28-day histories
    TRAINED_MODEL: "6",  # 6: cheapest candidate within the noise, its threshold, a backtest
    MODEL_EVALUATION: "5",  # 5: days resampled, the model's threshold, the backtest
    REGISTERED_MODEL: "4",  # 4: promoted when the interval's lower bound is above min_lower_bound
    FLIGHT_DELAY_PREDICTIONS: "1",
    FEATURE_DRIFT: "1",
}
"""Each asset's code version: bump it when the asset's output would change for the same
inputs, and the UI marks it (and what depends on it) unsynced."""

MODEL_LINEAGE = (
    RAW_FLIGHTS,
    RAW_WEATHER,
    RAW_PLANES,
    FLIGHT_FEATURES,
    TRAINED_MODEL,
    MODEL_EVALUATION,
    REGISTERED_MODEL,
)
"""The assets from the landing zone to the registered model, whose code versions a model
version records (and ``reproduce_job`` compares)."""

DRIFT_CHECK = dg.AssetCheckKey(FEATURE_DRIFT, "drift_within_thresholds")

DATA_VERSION_TAG = "dagster/data_version"
"""The tag under which Dagster records a materialization's data version."""
TRIGGER_TAG = "mlops/trigger"
"""What launched a run: the sensor's or schedule's name, or the command's."""
SEARCH_TAG = "mlops/search"
"""A retraining tagged ``mlops/search: full`` searches the candidates again (the weekly
schedule, the drift sensor, a rebuild); any other refits what the last search chose, unless
the search configuration changed."""
FULL_SEARCH = "full"
DRIFTED_MONTHS_TAG = "mlops/drifted_months"
"""The months whose drift launched a retraining (set by ``drift_retrain_sensor``)."""
