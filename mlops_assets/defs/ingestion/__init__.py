"""Landed monthly files become raw tables, checked; the sensor that notices new files."""
