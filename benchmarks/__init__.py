"""Benchmarks: each script measures one figure of the results table in docs/performance.md."""
