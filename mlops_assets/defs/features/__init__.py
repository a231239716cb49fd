"""Per-month flight features for the model, checked."""
