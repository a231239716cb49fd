"""Predictions of the @champion on each month's flights."""
