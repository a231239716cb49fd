"""The project's code location after a code change to ``flight_features`` (its code version
bumped), for the staleness tests."""

from mlops_assets import definitions

defs = definitions.defs.map_resolved_asset_specs(
    func=lambda spec: spec.replace_attributes(code_version=f"{spec.code_version}-bumped"),
    selection="flight_features",
)
