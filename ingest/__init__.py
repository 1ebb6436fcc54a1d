"""Ingest: sources of log lines, parsers per log format, and normalisation into Events.

Nothing here knows about detectors, alerts or the dashboard.
"""
