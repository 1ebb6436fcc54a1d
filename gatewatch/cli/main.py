"""``gatewatch``: the command line.

Every subcommand loads and validates the settings first (``--config`` or
``$GATEWATCH_CONFIG``, then ``GATEWATCH_*`` environment overrides); a bad config exits 2
with the file, the key and the reason.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from gatewatch import __version__
from gatewatch.cli import (
    alerts_cmd,
    config_cmd,
    db_cmd,
    detect_cmd,
    ingest_cmd,
    query_cmd,
    run_cmd,
    serve_cmd,
    simulate_cmd,
    users_cmd,
)
from gatewatch.cli.logs import configure_logging
from gatewatch.errors import ConfigError, GatewatchError

log = logging.getLogger("gatewatch")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatewatch",
        description=(
            "Gatewatch: a log-streaming API threat monitor. Reads API gateway and "
            "application access logs, normalises them into one event shape and stores "
            "every event in ClickHouse (embedded chDB by default)."
        ),
        epilog="Run 'gatewatch COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"gatewatch {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="TOML settings file (default: $GATEWATCH_CONFIG, else built-in defaults)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (
        ingest_cmd,
        run_cmd,
        detect_cmd,
        simulate_cmd,
        query_cmd,
        alerts_cmd,
        serve_cmd,
        users_cmd,
        config_cmd,
        db_cmd,
    ):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"gatewatch: invalid configuration\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except GatewatchError as exc:
        print(f"gatewatch: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("gatewatch: interrupted", file=sys.stderr)
        return 130


__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "build_parser", "configure_logging", "main"]
