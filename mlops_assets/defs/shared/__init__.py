"""Helpers every domain uses: asset keys and tags, partitions, policies, tables, lineage."""
