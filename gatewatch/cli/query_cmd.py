"""``gatewatch query``: the forensic questions, from the command line."""

from __future__ import annotations

import argparse
import ipaddress
import json
from typing import Any

from gatewatch.cli.common import parse_when, settings_from
from gatewatch.finding import KINDS
from gatewatch.store.queries import (
    ACTOR_COLUMNS,
    FINDING_COLUMNS,
    ActorKind,
    TimeRange,
    actor_activity,
    failed_auth_over_time,
    recent_findings,
    top_talkers,
)
from gatewatch.wiring import open_store


def _window_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        type=parse_when,
        default=parse_when("24h"),
        help="start: RFC 3339 or relative (15m, 2h, 7d); default 24h",
    )
    parser.add_argument("--until", type=parse_when, default=None, help="end (default: now)")


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "query",
        help="forensic queries: what did this IP, user or key do; top talkers; failed auth",
        description="Answer forensic questions from the stored events.",
    )
    sub = parser.add_subparsers(dest="query_command", metavar="QUESTION", required=True)
    actor = sub.add_parser("actor", help="everything one IP, user or API key did in a time range")
    who = actor.add_mutually_exclusive_group(required=True)
    who.add_argument("--ip", type=_ip, help="client IP address")
    who.add_argument("--user", help="principal (user name, JWT sub, consumer)")
    who.add_argument("--api-key", help="API key id or fp: fingerprint")
    _window_args(actor)
    actor.add_argument(
        "--limit",
        type=int,
        default=100,
        choices=range(1, 100_001),
        metavar="N",
        help="at most N requests (1..100000, default 100)",
    )
    actor.add_argument("--json", action="store_true", help="one JSON object per line")
    actor.set_defaults(handler=run_actor)
    talkers = sub.add_parser("top-talkers", help="busiest clients on the busiest routes")
    _window_args(talkers)
    talkers.add_argument("--route", help="one route template, e.g. '/api/v1/orders/{id}'")
    talkers.set_defaults(handler=run_top_talkers)
    failed = sub.add_parser("failed-auth", help="401 and 403 responses per time bucket")
    _window_args(failed)
    failed.add_argument("--bucket", default="5m", choices=["1m", "5m", "15m", "1h", "1d"])
    failed.set_defaults(handler=run_failed_auth)
    findings = sub.add_parser("findings", help="what the detectors found, newest first")
    _window_args(findings)
    findings.add_argument("--kind", choices=sorted(KINDS), help="only this finding kind")
    findings.add_argument("--entity", help="only this IP, user, API key or route")
    findings.add_argument(
        "--limit",
        type=int,
        default=100,
        choices=range(1, 10_001),
        metavar="N",
        help="at most N findings (1..10000, default 100)",
    )
    findings.add_argument("--json", action="store_true", help="one JSON object per line")
    findings.set_defaults(handler=run_findings)


def _window(args: argparse.Namespace) -> TimeRange:
    until = args.until or parse_when("0s")
    try:
        return TimeRange(args.since, until)
    except ValueError as exc:
        raise SystemExit(f"gatewatch: {exc}") from None


def run_actor(args: argparse.Namespace) -> int:
    store = open_store(settings_from(args))
    kind: ActorKind = "ip" if args.ip else "user" if args.user else "api_key"
    value = args.ip or args.user or args.api_key
    rows = actor_activity(store, kind, value, _window(args), limit=args.limit)
    for row in rows:
        if args.json:
            print(json.dumps(dict(zip(ACTOR_COLUMNS, row, strict=True))))
        else:
            ts, ip, method, host, path, query, status, user, key, _ua, _rid = row
            target = f"{path}?{query}" if query else path
            print(
                f"{ts}  {ip:15} {method:6} {status} {host}{target}  "
                f"user={user or '-'} key={key or '-'}"
            )
    if not args.json:
        print(f"({len(rows)} requests)")
    store.close()
    return 0


def run_top_talkers(args: argparse.Namespace) -> int:
    store = open_store(settings_from(args))
    for route, ip, requests, errors in top_talkers(store, _window(args), route=args.route):
        print(f"{route:40} {ip:39} {requests:>9,} requests {errors:>7,} errors")
    store.close()
    return 0


def run_failed_auth(args: argparse.Namespace) -> int:
    store = open_store(settings_from(args))
    for bucket, unauthorized, forbidden in failed_auth_over_time(
        store, _window(args), bucket=args.bucket
    ):
        print(f"{bucket}  401: {unauthorized:>7,}  403: {forbidden:>7,}")
    store.close()
    return 0


def run_findings(args: argparse.Namespace) -> int:
    store = open_store(settings_from(args))
    rows = recent_findings(
        store, _window(args), kind=args.kind, entity=args.entity, limit=args.limit
    )
    for row in rows:
        if args.json:
            print(json.dumps(dict(zip(FINDING_COLUMNS, row, strict=True)), default=str))
        else:
            detected, kind, subkind, severity, etype, entity, _first, _last, summary, evidence = (
                row[:10]
            )
            label = f"{kind}/{subkind}" if subkind else kind
            print(
                f"{detected}  {severity:8} {label:28} {etype}={entity}  {summary} "
                f"[{evidence} requests]"
            )
    if not args.json:
        print(f"({len(rows)} findings)")
    store.close()
    return 0
