"""The MLflow side: runs, registry aliases and their audit, provenance tags, fault classes."""
