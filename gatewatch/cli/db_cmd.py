"""``gatewatch db``: schema migrations and table counts."""

from __future__ import annotations

import argparse
from typing import Any

from gatewatch.cli.common import settings_from
from gatewatch.wiring import open_store


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "db",
        help="create or upgrade the schema; show row counts",
        description="Manage the ClickHouse store named by storage.dsn (embedded chDB by default).",
    )
    sub = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    migrate.set_defaults(handler=run_migrate)
    stats = sub.add_parser("stats", help="rows in events, dead_letters and findings")
    stats.set_defaults(handler=run_stats)


def run_migrate(args: argparse.Namespace) -> int:
    store = open_store(settings_from(args), migrate=False)
    applied = store.migrate()
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    store.close()
    return 0


def run_stats(args: argparse.Namespace) -> int:
    store = open_store(settings_from(args))
    for table in ("events", "dead_letters", "findings"):
        print(f"{table:13} {store.count(table):>12,}")
    store.close()
    return 0
