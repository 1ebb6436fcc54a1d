"""``gatewatch alerts``: send a test alert, manage suppressions, list alerts and their
delivery trail."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from alerts.channels import DeliveryError, build_channel, mask_url
from alerts.grouping import AlertManager
from alerts.messages import render
from alerts.model import Notice
from alerts.policy import AlertPolicy
from alerts.suppression import Suppression
from gatewatch.cli.common import parse_when, settings_from
from gatewatch.finding import KINDS, EntityType, Finding, Severity
from gatewatch.store.client import Store
from gatewatch.store.queries import (
    ALERT_COLUMNS,
    TimeRange,
    active_suppressions,
    delivery_attempts,
    recent_alerts,
    remove_suppression,
    save_suppression,
)
from gatewatch.wiring import open_store

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use 30m, 12h, 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "alerts",
        help="test alert channels, manage suppressions, list alerts",
        description="Alerts: a test message to a channel, suppression rules (with expiry "
        "and reason), and the stored alerts with their delivery trail.",
    )
    sub = parser.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    test = sub.add_parser(
        "test",
        help="send a sample alert to an Apprise URL or a configured channel",
        description="Send a sample alert now and report whether it arrived. TARGET is an "
        "Apprise URL (slack://..., mailto://..., json://...), console, file:PATH, or the "
        "name of a channel in the config.",
    )
    test.add_argument("target", metavar="TARGET")

    suppress = sub.add_parser(
        "suppress",
        help="stop alerting on matching findings for a while (they are still stored)",
        description="Add a suppression rule: findings matching every given criterion "
        "raise no alert until it expires. A running `gatewatch run` picks it up within a "
        "minute.",
    )
    suppress.add_argument("--kind", choices=sorted(KINDS), default="")
    suppress.add_argument("--entity", default="", help="IP, user, API key, network or global")
    suppress.add_argument("--route", default="", help="route template, e.g. /api/v1/orders/{id}")
    suppress.add_argument("--cidr", default="", help="client addresses in this network")
    suppress.add_argument(
        "--for", dest="duration", type=_duration, required=True, help="how long: 30m, 12h, 7d"
    )
    suppress.add_argument("--reason", required=True, help="why (kept with the rule)")
    suppress.add_argument("--by", default=None, help="who (default: the OS user)")

    sub.add_parser("suppressions", help="list the active suppression rules")
    unsuppress = sub.add_parser("unsuppress", help="remove a suppression rule")
    unsuppress.add_argument("id", metavar="ID")

    listing = sub.add_parser("list", help="recent alerts, newest first")
    listing.add_argument("--since", type=parse_when, default=parse_when("24h"))
    listing.add_argument("--state", choices=("open", "closed"))
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="JSON lines")

    trail = sub.add_parser("deliveries", help="every delivery attempt of one alert")
    trail.add_argument("alert_id", metavar="ALERT_ID")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.alerts_command == "test":
        return _test(args.target, settings.alerts.channels, settings.alerts.dashboard_url)
    handler = _STORE_COMMANDS[args.alerts_command]
    store = open_store(settings)
    try:
        return handler(args, store)
    finally:
        store.close()


def _list_suppressions(args: argparse.Namespace, store: Store) -> int:
    for rule in active_suppressions(store):
        criteria = ", ".join(
            f"{key}={rule[key]}" for key in ("kind", "entity", "route", "cidr") if rule[key]
        )
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rule["expires_ts"]))
        print(
            f"{rule['id']}  {criteria}  until {expires}  by {rule['created_by']}: {rule['reason']}"
        )
    return 0


def _list_alerts(args: argparse.Namespace, store: Store) -> int:
    window = TimeRange(args.since, parse_when("now"))
    for row in recent_alerts(store, window, state=args.state, limit=args.limit):
        if args.json:
            record = dict(zip(ALERT_COLUMNS, row, strict=True))
            sys.stdout.write(orjson.dumps(record, default=str).decode() + "\n")
        else:
            print(f"{row[0]:%Y-%m-%d %H:%M:%S}  {row[1]}  v{row[2]}  {row[3]:6}  {row[10]}")
    return 0


def _list_deliveries(args: argparse.Namespace, store: Store) -> int:
    for ts, version, channel, attempt, ok, error, latency, digest in delivery_attempts(
        store, args.alert_id
    ):
        status = "ok" if ok else f"failed: {error}"
        extra = " (digest)" if digest else ""
        print(f"{ts:%Y-%m-%d %H:%M:%S}  v{version}  {channel}  attempt {attempt}  "
              f"{latency:.0f} ms  {status}{extra}")  # fmt: skip
    return 0


def _test(target: str, channels: Any, dashboard_url: str) -> int:
    name, url = "test", target
    if target in channels:
        name, url = target, channels[target].url.get_secret_value()
    try:
        channel = build_channel(name, url)
    except ValueError as exc:
        print(f"gatewatch alerts test: {exc}", file=sys.stderr)
        return 2
    notices: list[Notice] = []
    AlertManager(AlertPolicy(), notices.append).on_finding(_sample_finding())
    notice = notices[0]
    title, body = render(notice.alert, notice.reason, channel.format, dashboard_url=dashboard_url)
    try:
        asyncio.run(channel.send(title, body))
    except DeliveryError as exc:
        print(f"gatewatch alerts test: {mask_url(url)}: {exc}", file=sys.stderr)
        return 1
    print(f"sent a sample alert to {mask_url(url)}", file=sys.stderr)
    return 0


def _sample_finding() -> Finding:
    now = time.time()
    return Finding(
        id="f-sample0000000000000",
        kind="credential_stuffing",
        subkind="account_takeover",
        severity=Severity.CRITICAL,
        score=1.0,
        entity_type=EntityType.IP,
        entity="203.0.113.9",
        first_ts=now - 240,
        last_ts=now,
        detected_ts=now,
        summary="sample: 'alice' logged in from 203.0.113.9 right after 212 failed logins "
        "for 198 accounts from 203.0.113.9 in 240 s (this is a test of the alert channel)",
        evidence=("00000000-0000-4000-8000-000000000001",),
        owasp="API2:2023",
        mitre="T1110.004",
        detector="credential_stuffing",
    )


def _suppress(args: argparse.Namespace, store: Store) -> int:
    try:
        rule = Suppression.create(
            reason=args.reason,
            created_by=args.by or getpass.getuser(),
            duration_s=args.duration,
            now=time.time(),
            kind=args.kind,
            entity=args.entity,
            route=args.route,
            cidr=args.cidr,
        )
    except ValueError as exc:
        print(f"gatewatch alerts suppress: {exc}", file=sys.stderr)
        return 2
    save_suppression(store, rule.to_row())
    print(rule.id)
    return 0


def _unsuppress(args: argparse.Namespace, store: Store) -> int:
    if remove_suppression(store, args.id):
        print(f"removed {args.id}", file=sys.stderr)
        return 0
    print(f"gatewatch alerts unsuppress: no active rule {args.id}", file=sys.stderr)
    return 1


_STORE_COMMANDS: dict[str, Callable[[argparse.Namespace, Store], int]] = {
    "suppress": _suppress,
    "suppressions": _list_suppressions,
    "unsuppress": _unsuppress,
    "list": _list_alerts,
    "deliveries": _list_deliveries,
}
