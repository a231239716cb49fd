"""Declarative automation: the sensor that evaluates the assets' automation conditions."""

import dagster as dg

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=30,
    description="Rebuilds a month's features when its raw data change outside its own run, "
    "and retrains, evaluates and registers the model when the features it uses change.",
)
