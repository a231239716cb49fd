"""Small typed values that assets pass along the graph (stored as JSON, not pickles)."""

from __future__ import annotations

from pydantic import BaseModel

from mlops_assets.ml.promotion import AucComparison

CHAMPION, CHALLENGER = "champion", "challenger"
"""Registry aliases: the version that serves, and the newest version the pipeline registered."""


class ModelReference(BaseModel):
    """A model logged to MLflow: where to load it from and what it was trained on."""

    model_uri: str
    model_id: str
    run_id: str
    train_months: list[str]
    holdout_month: str
    train_rows: int
    candidate: str = ""
    validation_month: str | None = None
    search: str = ""
    """``full`` (candidates searched) or ``refit`` (the last search's choice refitted)."""
    provenance: dict[str, str] = {}
    threshold: float | None = None
    """The operating threshold chosen on the validation month (None: the evaluation's own)."""
    backtest: list[dict[str, float | int | str]] = []
    """The rolling backtest's folds before the held-out month (``mlops_assets.ml.backtest``)."""


class ChampionComparison(BaseModel):
    """The champion scored on the same held-out rows, and the paired bootstrap of the AUCs."""

    version: str
    metrics: dict[str, float]
    auc: AucComparison


class EvaluationReport(BaseModel):
    """Held-out metrics of one logged model, and of the champion it would replace."""

    model_uri: str
    holdout_month: str
    run_id: str
    metrics: dict[str, float]
    champion: ChampionComparison | None = None
    config: dict[str, float | int] = {}


class RegisteredModelVersion(BaseModel):
    """A registry version and what the quality gate decided about it."""

    name: str
    version: str
    aliases: list[str]
    promoted: bool
    reason: str
    previous_champion: str | None
