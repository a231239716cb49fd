"""Every asset, job, schedule and sensor of the code location, one module per concern."""
