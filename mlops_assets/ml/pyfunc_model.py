"""The served model, logged to MLflow as code ("models from code").

MLflow copies this file into the model's artifacts, so the model loads without this package
installed: it needs only MLflow, pandas and scikit-learn. It takes rows of the feature
columns and returns the probability that the flight arrives 15 or more minutes late.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel, PythonModelContext

OUTPUT_COLUMN = "delay_probability"


class FlightDelayModel(PythonModel):
    """Delay probability from the fitted scikit-learn pipeline in the ``classifier`` artifact."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the fitted pipeline saved next to this code (a cloudpickle file)."""
        import cloudpickle

        with open(context.artifacts["classifier"], "rb") as handle:  # noqa: PTH123
            self.classifier = cloudpickle.load(handle)

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Probability of an arrival delay of 15 minutes or more, one per input row."""
        columns = list(self.classifier.feature_names_in_)
        missing = [column for column in columns if column not in model_input.columns]
        if missing:
            # An MlflowException reaches a REST client as a 400 with this message; any other
            # error would be reported as "unexpected error while evaluating the model".
            raise MlflowException.invalid_parameter_value(
                f"input is missing feature column(s): {missing}"
            )
        proba = self.classifier.predict_proba(model_input[columns])[:, 1]
        return pd.DataFrame({OUTPUT_COLUMN: proba}, index=model_input.index)


mlflow.models.set_model(FlightDelayModel())
