"""The served model, logged to MLflow as code ("models from code").

MLflow copies this file into the model's artifacts, so the model loads without this package
installed: it needs only MLflow, pandas and scikit-learn. It takes rows of the feature
columns and returns the probability that the flight arrives 15 or more minutes late.

Two costs of a small request are avoided here, both measured (docs/performance.md,
*Serving*), with the same probabilities to the last bit:

- scikit-learn's ``ColumnTransformer`` spends milliseconds of checks on every call whatever
  the rows; when the pipeline is the ordinal encoding then a classifier (every boosting
  candidate), :class:`OrdinalCodes` writes the same codes from the fitted encoder's public
  ``categories_`` and hands them to the classifier;
- the booster opens an OpenMP region per tree, which on a small request costs more than the
  walk itself (and much more when another process holds a core): up to
  :data:`ONE_THREAD_ROWS` rows run on one thread.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel, PythonModelContext

OUTPUT_COLUMN = "delay_probability"
ONE_THREAD_ROWS = 10_000
"""Requests up to this many rows score on one OpenMP thread (bigger batches on all)."""


class OrdinalCodes:
    """The fitted ordinal encoding of a pipeline, applied without ``ColumnTransformer``.

    Built only for the shape this project fits: ``categorical`` (an ``OrdinalEncoder`` whose
    unknown and missing values are -1) then ``numeric`` (passed through), nothing else.
    """

    def __init__(self, categorical: list[str], categories: list[pd.Index], numeric: list[str]):
        self.categorical = categorical
        self.categories = categories
        self.numeric = numeric

    @classmethod
    def of(cls, pipeline: Any) -> OrdinalCodes | None:
        """The encoding of ``pipeline``'s first step, or None when it has another shape."""
        from sklearn.compose import ColumnTransformer
        from sklearn.preprocessing import OrdinalEncoder

        steps = getattr(pipeline, "steps", [])
        encoder = steps[0][1] if len(steps) == 2 else None
        if not isinstance(encoder, ColumnTransformer):
            return None
        named = {
            name: (transformer, list(columns))
            for name, transformer, columns in encoder.transformers_
            if not (name == "remainder" and transformer == "drop")
        }
        if list(named) != ["categorical", "numeric"]:
            return None
        ordinal, categorical = named["categorical"]
        passthrough, numeric = named["numeric"]
        if not (
            isinstance(ordinal, OrdinalEncoder)
            and ordinal.handle_unknown == "use_encoded_value"
            and ordinal.unknown_value == -1
            and ordinal.encoded_missing_value == -1
            and (passthrough == "passthrough" or _is_identity(passthrough))
        ):
            return None
        categories = [pd.Index([v for v in c if not pd.isna(v)]) for c in ordinal.categories_]
        return cls(categorical, categories, numeric)

    def transform(self, rows: pd.DataFrame) -> np.ndarray:
        """The codes ``ColumnTransformer.transform`` gives: categories then numbers, floats."""
        codes = np.empty((len(rows), len(self.categorical) + len(self.numeric)))
        for i, (column, categories) in enumerate(
            zip(self.categorical, self.categories, strict=True)
        ):
            codes[:, i] = categories.get_indexer(rows[column].astype(object))
        numbers = rows[self.numeric].to_numpy(dtype="float64", na_value=np.nan)
        codes[:, len(self.categorical) :] = numbers
        return codes


def _is_identity(transformer: Any) -> bool:
    """Whether ``transformer`` is scikit-learn's fitted form of ``"passthrough"``."""
    from sklearn.preprocessing import FunctionTransformer

    return isinstance(transformer, FunctionTransformer) and transformer.func is None


class FlightDelayModel(PythonModel):
    """Delay probability from the fitted scikit-learn pipeline in the ``classifier`` artifact."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the fitted pipeline saved next to this code (a cloudpickle file)."""
        import cloudpickle
        from threadpoolctl import ThreadpoolController

        with open(context.artifacts["classifier"], "rb") as handle:  # noqa: PTH123
            self.classifier = cloudpickle.load(handle)
        self.columns = list(self.classifier.feature_names_in_)
        self.codes = OrdinalCodes.of(self.classifier)
        self.threads = ThreadpoolController()

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Probability of an arrival delay of 15 minutes or more, one per input row."""
        missing = [column for column in self.columns if column not in model_input.columns]
        if missing:
            # An MlflowException reaches a REST client as a 400 with this message; any other
            # error would be reported as "unexpected error while evaluating the model".
            raise MlflowException.invalid_parameter_value(
                f"input is missing feature column(s): {missing}"
            )
        rows = model_input[self.columns]
        if len(rows) <= ONE_THREAD_ROWS:
            with self.threads.limit(limits=1, user_api="openmp"):
                proba = self._proba(rows)
        else:
            proba = self._proba(rows)
        return pd.DataFrame({OUTPUT_COLUMN: proba}, index=model_input.index)

    def _proba(self, rows: pd.DataFrame) -> np.ndarray:
        if self.codes is None:
            return np.asarray(self.classifier.predict_proba(rows)[:, 1])
        return np.asarray(self.classifier[-1].predict_proba(self.codes.transform(rows))[:, 1])


mlflow.models.set_model(FlightDelayModel())
