"""Feature drift, freshness of the champion and predictions, and failed runs."""
