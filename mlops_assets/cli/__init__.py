"""The ``mlops-assets`` command: seed the landing zone, prepare the instance, rebuild, serve."""
