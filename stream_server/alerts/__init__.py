"""Turning scores into decisions: thresholds, cooldown, severity and call-level rules."""
