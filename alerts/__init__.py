"""Alerts: from findings (evidence) to the few notices that should wake a person."""
