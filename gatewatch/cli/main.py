"""``gatewatch``: the command line.

Every subcommand loads and validates the settings first (``--config`` or
``$GATEWATCH_CONFIG``, then ``GATEWATCH_*`` environment overrides); a bad config exits 2
with the file, the key and the reason.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gatewatch import __version__
from gatewatch.cli.logs import configure_logging
from gatewatch.errors import ConfigError, GatewatchError

log = logging.getLogger("gatewatch")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

# Each command's module, in the order ``--help`` lists them. Only the command being run
# is imported: some pull in the whole detection stack (a second of start-up) that
# ``gatewatch simulate`` or ``gatewatch users`` never use.
COMMANDS = {
    name: f"gatewatch.cli.{name}_cmd"
    for name in (
        "ingest",
        "run",
        "detect",
        "simulate",
        "query",
        "alerts",
        "serve",
        "users",
        "config",
        "db",
    )
}
_VALUED = frozenset({"-c", "--config"})  # top-level options that take the next argument


def command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, if it names a known one (None: build them all, for
    the top-level help or argparse's error about an unknown command)."""
    args = iter(argv)
    for arg in args:
        if arg in _VALUED:
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``command``, only that command's subparser (and module)."""
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
    for name in [command] if command in COMMANDS else COMMANDS:
        importlib.import_module(COMMANDS[name]).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(command_in(sys.argv[1:] if argv is None else argv))
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


__all__ = [
    "COMMANDS",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "command_in",
    "configure_logging",
    "main",
]
