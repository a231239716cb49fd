"""The landing zone: where monthly files land, how they are scanned, and the scale-up copies."""
