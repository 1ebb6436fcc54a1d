"""``gatewatch config check``: validate a settings file without starting anything."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gatewatch.settings import load_settings


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "config",
        help="validate or show settings",
        description="Validate a settings file, or show the effective settings (secrets masked).",
    )
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="validate a TOML settings file: exits 0 when valid, 2 naming file, key and reason",
        description="Validate FILE plus GATEWATCH_* environment overrides. Exit 0 when valid, "
        "2 with one line per problem (file: key: reason) when not.",
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(handler=run_check)
    show = sub.add_parser("show", help="print the effective settings as JSON (secrets masked)")
    show.set_defaults(handler=run_show)


def run_check(args: argparse.Namespace) -> int:
    load_settings(args.file)
    print(f"{args.file}: OK")
    return 0


def run_show(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    # SecretStr serialises as '**********' in JSON mode: secrets are never printed.
    print(json.dumps(settings.model_dump(mode="json"), indent=2, default=str))
    return 0
