"""Jobs, schedules, automation, and the operator's jobs (reproduce, roll back)."""
