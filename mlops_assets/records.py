"""Small typed values that assets pass along the graph (stored as JSON, not pickles)."""

from __future__ import annotations

from pydantic import BaseModel


class ModelReference(BaseModel):
    """A model logged to MLflow: where to load it from and what it was trained on."""

    model_uri: str
    model_id: str
    run_id: str
    train_months: list[str]
    holdout_month: str
    train_rows: int


class EvaluationReport(BaseModel):
    """Held-out metrics of one logged model."""

    model_uri: str
    holdout_month: str
    run_id: str
    metrics: dict[str, float]


class RegisteredModelVersion(BaseModel):
    """A registry version and what the quality gate decided about it."""

    name: str
    version: str
    aliases: list[str]
    promoted: bool
    reason: str
    previous_champion: str | None
