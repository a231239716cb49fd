"""Batch scoring: a month's flights, their delay probability and the model version that scored."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from mlops_assets.ml.columns import FEATURE_COLUMNS, KEY_COLUMNS, TARGET
from mlops_assets.ml.packaging import OUTPUT_COLUMN

MODEL_VERSION_COLUMN = "model_version"
PREDICTION_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, OUTPUT_COLUMN, MODEL_VERSION_COLUMN, TARGET)


def score_flights(
    features: pd.DataFrame,
    predict: Callable[[pd.DataFrame], pd.DataFrame],
    model_version: str,
) -> pd.DataFrame:
    """One row per flight: its keys, the delay probability, the scoring version, the outcome.

    Args:
        features: Feature rows (key columns, feature columns and the observed label).
        predict: The served model's ``predict``: feature columns in, ``delay_probability`` out.
        model_version: The registry version behind ``predict``.

    Raises:
        ValueError: When the model returns a different number of rows or no probability column.
    """
    scored = predict(features[list(FEATURE_COLUMNS)])
    if OUTPUT_COLUMN not in scored.columns or len(scored) != len(features):
        raise ValueError(
            f"model version {model_version} returned {len(scored)} rows with columns "
            f"{list(scored.columns)} for {len(features)} flights; expected {OUTPUT_COLUMN!r}"
        )
    result = features[list(KEY_COLUMNS)].reset_index(drop=True)
    result[OUTPUT_COLUMN] = scored[OUTPUT_COLUMN].to_numpy(dtype="float64")
    result[MODEL_VERSION_COLUMN] = pd.Series(model_version, index=result.index, dtype="string")
    # The observed outcome, for monitoring; a feed of future flights would leave it empty.
    result[TARGET] = features[TARGET].to_numpy()
    return result
