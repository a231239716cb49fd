"""Benchmarks: each script measures one figure of the README's results table."""
