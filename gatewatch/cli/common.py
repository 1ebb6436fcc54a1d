"""Helpers shared by subcommands: settings from arguments, time ranges."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from gatewatch.cli.logs import configure_logging
from gatewatch.settings import Settings, load_settings


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Load settings (plus overrides from command-line flags) and configure logging: the
    entry point's one job before work."""
    settings = load_settings(args.config, **overrides)
    level = "DEBUG" if getattr(args, "verbose", False) else settings.logging.level
    configure_logging(level, settings.logging.format)
    return settings


def parse_when(text: str) -> datetime:
    """An RFC 3339 time, ``now``, or a relative one like ``15m``, ``2h``, ``7d`` (ago)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    if text == "now":
        return datetime.now(UTC)
    if text and text[-1] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use RFC 3339 (2026-01-31T12:00:00Z) or 15m, 2h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
