"""The code location's definitions, one package per domain (loaded by ``definitions.py``)."""
