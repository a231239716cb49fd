"""Packaging the fitted pipeline as a self-contained MLflow pyfunc model."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlops_assets.ml.columns import CATEGORICAL_FEATURES, NUMERIC_FEATURES

if TYPE_CHECKING:
    from mlflow.models import ModelSignature
    from mlflow.models.model import ModelInfo
    from sklearn.pipeline import Pipeline

MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
MODEL_NAME_IN_RUN = "model"
# The served model's output column; pyfunc_model.py, which must stay self-contained, spells it too.
OUTPUT_COLUMN = "delay_probability"


def pip_requirements() -> list[str]:
    """The serving environment, pinned to what trained the model.

    Passing them explicitly saves MLflow's requirement inference (several seconds a model).
    """
    return [
        f"{package}=={version(package)}"
        for package in ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle")
    ]


def model_signature() -> ModelSignature:
    """Feature columns in, delay probability out; every input may be missing (NaN/None).

    Built from the declared feature lists, not inferred from a few example rows, which would
    wrongly mark columns that happen to be filled in those rows as required.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    inputs: list[ColSpec | TensorSpec] = [
        ColSpec("string", name, required=False) for name in CATEGORICAL_FEATURES
    ]
    inputs += [ColSpec("double", name, required=False) for name in NUMERIC_FEATURES]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("double", OUTPUT_COLUMN)]))


def log_pyfunc_model(
    pipeline: Pipeline, input_example: pd.DataFrame, params: Mapping[str, Any]
) -> ModelInfo:
    """Log ``pipeline`` to the active MLflow run as a pyfunc returning the delay probability.

    Args:
        pipeline: The fitted scikit-learn pipeline.
        input_example: A few rows of feature columns (saved with the model and used to
            infer its signature).
        params: The LoggedModel's parameters (the candidate and its hyperparameters).

    Returns:
        MLflow's record of the logged model (``model_uri``, ``model_id``).
    """
    import cloudpickle
    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        # One pickle file, not a nested MLflow sklearn model: the pyfunc around it already
        # carries the requirements and signature, and writing them twice cost ~0.25 s.
        classifier_file = Path(scratch) / "classifier.pkl"
        with classifier_file.open("wb") as handle:
            cloudpickle.dump(pipeline, handle)
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=str(MODEL_CODE),
            artifacts={"classifier": str(classifier_file)},
            signature=model_signature(),
            input_example=input_example,
            pip_requirements=pip_requirements(),
            params={key: str(value) for key, value in params.items()},
            tags={"role": "model"},
        )
