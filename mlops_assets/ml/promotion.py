"""The quality gate that decides whether a new model version becomes the champion."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and why, in words an operator can read."""

    promote: bool
    reason: str


def absolute_floor_gate(roc_auc: float, min_roc_auc: float) -> GateDecision:
    """Promote when the held-out ROC AUC reaches the configured floor.

    Args:
        roc_auc: The candidate's held-out ROC AUC.
        min_roc_auc: The floor a champion must reach.

    Returns:
        The decision and its reason.

    Raises:
        ValueError: When the AUC is not a number in [0, 1].
    """
    if not 0.0 <= roc_auc <= 1.0:
        raise ValueError(f"held-out ROC AUC must be within [0, 1], got {roc_auc!r}")
    if roc_auc >= min_roc_auc:
        return GateDecision(True, f"held-out ROC AUC {roc_auc:.4f} >= floor {min_roc_auc:.4f}")
    return GateDecision(False, f"held-out ROC AUC {roc_auc:.4f} < floor {min_roc_auc:.4f}")
