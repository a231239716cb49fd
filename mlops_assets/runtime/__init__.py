"""How the project runs: settings, the environment's profiles, workers, the local instance."""
