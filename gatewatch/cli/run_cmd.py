"""``gatewatch run``: consume gateway logs from Kafka into the store, until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

from gatewatch.cli.common import settings_from
from gatewatch.metrics import Metrics
from gatewatch.settings import load_settings

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="consume logs from Kafka into the store (at-least-once, no duplicates)",
        description=(
            "Join a Kafka consumer group and store every record as an event or a dead "
            "letter. Offsets are committed only after the batch is in ClickHouse; a replay "
            "after a crash stores nothing twice. Stop with SIGTERM or Ctrl-C: the current "
            "batch is stored and committed and the consumer leaves the group. SIGHUP re-reads "
            "the config file and applies new detector params without losing detector state."
        ),
    )
    parser.add_argument(
        "--kafka",
        metavar="BOOTSTRAP",
        help="bootstrap servers, host:port[,host:port] (default: kafka.bootstrap_servers)",
    )
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="TOPIC[:FORMAT]",
        help="a topic to consume, with its log format (default auto); repeatable",
    )
    parser.add_argument("--group", help="consumer group id (default: kafka.group_id)")
    parser.set_defaults(handler=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    kafka: dict[str, Any] = {}
    if args.kafka:
        kafka["bootstrap_servers"] = [s.strip() for s in args.kafka.split(",") if s.strip()]
    if args.topic:
        topics = {}
        for spec in args.topic:
            topic, _, fmt = spec.partition(":")
            topics[topic] = fmt or "auto"
        kafka["topics"] = topics
    if args.group:
        kafka["group_id"] = args.group
    return {"kafka": kafka} if kafka else {}


def run(args: argparse.Namespace) -> int:
    from gatewatch.kafka_ingest import run_kafka  # noqa: PLC0415 - keeps --help fast

    settings = settings_from(args, **_overrides(args))
    if not settings.kafka.topics:
        print("gatewatch run: no topics: pass --topic TOPIC[:FORMAT] or set kafka.topics")
        return 2
    metrics = Metrics()
    if settings.metrics.enabled:
        metrics.serve(settings.metrics.host, settings.metrics.port)
    try:
        overrides = _overrides(args)
        stats = asyncio.run(
            run_kafka(
                settings,
                metrics=metrics,
                reload=lambda: load_settings(args.config, **overrides),
            )
        )
    finally:
        metrics.close()
    print(
        f"consumed {stats.records} records: {stats.events} events, "
        f"{stats.dead_letters} dead letters ({time.process_time():.2f} CPU s)"
    )
    return 0
