"""Alias moves in the MLflow model registry, each recorded for the audit trail (no dagster).

Every move of ``@champion`` or ``@challenger`` is written as a tag of the registered model,
``alias_move.<UTC time>.<alias>``, whose value is JSON: the alias, the version it left (or
none), the version it points to, when, which Dagster run, and why. The MLflow UI shows them
on the registered model's page; :func:`alias_history` lists them, oldest first.

A move is recorded before the alias moves, so an alias never points anywhere without its
record; the step that moves it can be retried (or its run re-executed) after an outage at any
point: :func:`move_alias` completes a recorded move instead of recording it twice, and
:func:`find_registration` finds the version an earlier attempt of the same registration
created instead of registering another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mlops_assets.tracking.records import CHALLENGER, CHAMPION

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

MOVE_TAG_PREFIX = "alias_move."
REGISTRATION_TAGS = ("training_run_id", "evaluation_run_id", "dagster.root_run_id")
"""Version tags that identify one registration: the model, its evaluation, and the Dagster run
(with its re-executions, which share the root run)."""


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


def registered_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    """Version ``version`` of the registered model ``name``.

    Raises:
        RegistryError: There is no such model or version (or ``version`` is no version
            number); the message says which. Other MLflow errors (an outage) propagate.
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, version)
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise RegistryError(f"{name} has no version {version!r} ({error.message})") from error


def record_move(
    client: MlflowClient,
    name: str,
    alias: str,
    version: str,
    *,
    from_version: str | None,
    dagster_run_id: str,
    reason: str,
) -> AliasMove:
    """Record on the registered model that ``alias`` moves to ``version``; it does not move it."""
    move = AliasMove(
        alias=alias,
        from_version=from_version,
        to_version=version,
        at=datetime.now(UTC).isoformat(timespec="microseconds"),
        dagster_run_id=dagster_run_id,
        reason=reason,
    )
    key = f"{MOVE_TAG_PREFIX}{move.at.replace(':', '-').replace('+', 'Z')}.{alias}"
    client.set_registered_model_tag(name, key, json.dumps(asdict(move)))
    return move


def move_alias(
    client: MlflowClient,
    name: str,
    alias: str,
    version: str,
    *,
    dagster_run_id: str,
    reason: str,
) -> AliasMove:
    """Record the move of ``alias`` to ``version`` on the registered model, then make it.

    When the alias's latest record already points it at ``version`` and the alias is still
    where that record says it left, or already moved (an attempt that stopped between the two
    requests, or after both), the recorded move is completed and returned: nothing is recorded
    twice.
    """
    current = current_version(client, name, alias)
    history = alias_history(client, name, alias)
    last = history[-1] if history else None
    if last is not None and last.to_version == version and current in (last.from_version, version):
        move = last
    else:
        move = record_move(
            client,
            name,
            alias,
            version,
            from_version=current,
            dagster_run_id=dagster_run_id,
            reason=reason,
        )
    if current != version:
        client.set_registered_model_alias(name, alias, version)
    return move


def move_aliases_after_gate(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    promote: bool,
    previous_champion: str | None,
    dagster_run_id: str,
    reason: str,
) -> list[AliasMove]:
    """Point ``@challenger`` at a newly registered ``version``, and ``@champion`` if promoted.

    A replaced champion is tagged ``retired_by_version``. Each move is recorded (and
    completed, not recorded twice, when an earlier attempt began it): see :func:`move_alias`.
    """
    moves = [
        move_alias(
            client,
            name,
            CHALLENGER,
            version,
            dagster_run_id=dagster_run_id,
            reason="the newest version registered by the pipeline",
        )
    ]
    if promote:
        moves.append(
            move_alias(
                client, name, CHAMPION, version, dagster_run_id=dagster_run_id, reason=reason
            )
        )
        if previous_champion is not None and previous_champion != version:
            client.set_model_version_tag(name, previous_champion, "retired_by_version", version)
    return moves


def alias_history(client: MlflowClient, name: str, alias: str | None = None) -> list[AliasMove]:
    """Every recorded move (of ``alias`` only, when given), oldest first."""
    tags = client.get_registered_model(name).tags
    moves = [
        AliasMove(**json.loads(value))
        for key, value in tags.items()
        if key.startswith(MOVE_TAG_PREFIX)
    ]
    return sorted((m for m in moves if alias is None or m.alias == alias), key=lambda move: move.at)


def find_registration(client: MlflowClient, name: str, tags: Mapping[str, str]) -> str | None:
    """The version an earlier attempt of this registration created, or None.

    Args:
        client: The registry.
        name: The registered model.
        tags: The new version's tags; those of :data:`REGISTRATION_TAGS` identify it.

    Returns:
        The (oldest) version whose registration tags all equal ``tags``'s.
    """
    found = client.search_model_versions(
        f"name = '{name}' and tags.training_run_id = '{tags['training_run_id']}'"
    )
    same = [v for v in found if all(v.tags.get(k) == tags[k] for k in REGISTRATION_TAGS)]
    return str(min(int(v.version) for v in same)) if same else None


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
