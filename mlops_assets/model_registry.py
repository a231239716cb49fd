"""Alias moves in the MLflow model registry, each recorded for the audit trail (no dagster).

Every move of ``@champion`` or ``@challenger`` is written as a tag of the registered model,
``alias_move.<UTC time>.<alias>``, whose value is JSON: the alias, the version it left (or
none), the version it points to, when, which Dagster run, and why. The MLflow UI shows them
on the registered model's page; :func:`alias_history` lists them, oldest first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

MOVE_TAG_PREFIX = "alias_move."


class RegistryError(Exception):
    """A registry request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias, as recorded."""

    alias: str
    from_version: str | None
    to_version: str
    at: str
    dagster_run_id: str
    reason: str


def current_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version that carries ``alias``, or None when none does (or no model exists)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def move_alias(
    client: MlflowClient,
    name: str,
    alias: str,
    version: str,
    *,
    dagster_run_id: str,
    reason: str,
) -> AliasMove:
    """Point ``alias`` at ``version`` and record the move on the registered model."""
    move = AliasMove(
        alias=alias,
        from_version=current_version(client, name, alias),
        to_version=version,
        at=datetime.now(UTC).isoformat(timespec="microseconds"),
        dagster_run_id=dagster_run_id,
        reason=reason,
    )
    client.set_registered_model_alias(name, alias, version)
    key = f"{MOVE_TAG_PREFIX}{move.at.replace(':', '-').replace('+', 'Z')}.{alias}"
    client.set_registered_model_tag(name, key, json.dumps(asdict(move)))
    return move


def alias_history(client: MlflowClient, name: str, alias: str | None = None) -> list[AliasMove]:
    """Every recorded move (of ``alias`` only, when given), oldest first."""
    tags = client.get_registered_model(name).tags
    moves = [
        AliasMove(**json.loads(value))
        for key, value in tags.items()
        if key.startswith(MOVE_TAG_PREFIX)
    ]
    return sorted((m for m in moves if alias is None or m.alias == alias), key=lambda move: move.at)


def rollback_target(history: list[AliasMove], current: str | None, requested: str | None) -> str:
    """The version a rollback of ``@champion`` moves to.

    Args:
        history: The champion's recorded moves, oldest first.
        current: The version that is champion now.
        requested: A version named by the operator, or None for the previous champion.

    Raises:
        RegistryError: With no champion, no previous champion, or a target that is the
            current champion.
    """
    if current is None:
        raise RegistryError("there is no @champion to roll back")
    if requested is None:
        arrivals = [m for m in history if m.to_version == current and m.from_version]
        if not arrivals:
            raise RegistryError(
                f"@champion is version {current} and no earlier champion is recorded: "
                "name the version to roll back to"
            )
        requested = str(arrivals[-1].from_version)
    if requested == current:
        raise RegistryError(f"version {requested} is already @champion")
    return requested


@dataclass(frozen=True)
class ChampionAudit:
    """Whether ``@champion`` is a version the pipeline may use."""

    version: str | None
    gate: str
    move: AliasMove | None

    @property
    def usable(self) -> bool:
        """It exists, passed the gate and got there by a recorded move (promotion or rollback)."""
        return self.version is not None and self.gate == "passed" and self.move is not None

    def describe(self) -> str:
        """One sentence for a check result or an error."""
        if self.version is None:
            return "no version carries @champion yet (none reached the floor)"
        moved = (
            f"moved there by run {self.move.dagster_run_id}"
            if self.move
            else "not moved by the pipeline or a rollback (no audit record)"
        )
        return f"@champion is version {self.version}: gate {self.gate}, {moved}"


def audit_champion(client: MlflowClient, name: str, alias: str) -> ChampionAudit:
    """The version carrying ``alias``, its gate tag, and the recorded move that put it there."""
    version = current_version(client, name, alias)
    if version is None:
        return ChampionAudit(version=None, gate="missing", move=None)
    gate = client.get_model_version(name, version).tags.get("gate", "missing")
    history = alias_history(client, name, alias)
    # The last recorded move must be the one that put this version there.
    move = history[-1] if history and history[-1].to_version == version else None
    return ChampionAudit(version=version, gate=gate, move=move)
