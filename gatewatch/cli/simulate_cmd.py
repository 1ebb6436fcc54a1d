"""``gatewatch simulate``: realistic API traffic in any supported log format."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gatewatch.cli.common import parse_when, settings_from
from gatewatch.settings import Settings
from ingest.simulator.actor import Actor
from ingest.simulator.attacks import ATTACKS, build_episodes, parse_kinds
from ingest.simulator.kafka_output import produce_lines
from ingest.simulator.labels import LabelWriter
from ingest.simulator.output import write_lines
from ingest.simulator.render import RENDERERS
from ingest.simulator.request import SimRequest
from ingest.simulator.traffic import SimulationConfig, generate
from ingest.simulator.traps import TRAPS, build_traps
from ingest.sources.kafka import connection_options

RENDER_FORMATS = tuple(RENDERERS)
_DESCRIPTION = (
    "Generate realistic API traffic (users with sessions, partners with API keys, corporate "
    "NAT, mobile CGNAT, crawlers, health checks, password typos) in any supported log "
    "format. Deterministic for a seed and --start: they give the same lines. Event time "
    "starts at --start and advances by simulated time, never the wall clock; --rate only "
    "paces how fast lines are written.",
    "Labelled attacks: --attacks injects scripted attack episodes into the traffic (their "
    "requests are ordinary log lines; every other request is exactly what the seed gives "
    "without them). Episodes start after a warm-up (10% of the run or 5 minutes, whichever "
    "is less) and are spread over the run from the seed; episodes of related kinds never "
    "overlap. A run shorter than an hour compresses them (a password spray is realistically "
    "slow only in runs of an hour or more). --labels DIR also writes the evaluation set: "
    "DIR/canonical.jsonl (every request), DIR/labels.jsonl (request_id and attack_id of "
    "each attack request) and DIR/attacks.json (per episode: attack_id, accepted_kinds, "
    "start, end, kind, variant, requests, description). With --attacks, benign traps (stale "
    "app versions calling removed routes, admins running large exports, catalogue browsing "
    "over many product ids, sign-ups, photo uploads) are added too, unless --no-traps.",
    f"Attack kinds: {', '.join(ATTACKS)}.",
    "Example: gatewatch simulate --attacks all --duration 7200 --seed 7 "
    "--start 2024-03-12T08:00:00Z --labels eval/seed7",
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate",
        help="write realistic simulated API traffic as log lines",
        description="\n\n".join(textwrap.fill(paragraph, 88) for paragraph in _DESCRIPTION),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--format",
        default="canonical",
        choices=RENDER_FORMATS,
        help="log format to write (default: canonical)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="file to append to, or - for stdout (default: stdout; with --labels, no "
        "log lines are written unless --output is given)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="simulated seconds of traffic (default 600)",
    )
    size.add_argument("--count", type=int, metavar="N", help="number of requests to write")
    parser.add_argument(
        "--rate",
        type=float,
        metavar="LINES_PER_S",
        help="pace output at this many lines per second (default: as fast as possible)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--start",
        metavar="TIME",
        help="event time of the first request, RFC 3339 (default: now minus the duration)",
    )
    parser.add_argument("--users", type=int, default=None, help="number of simulated users")
    parser.add_argument(
        "--crowd",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="FACTOR times as many users, partners and crawlers, each at its usual pace "
        "(a busier API: 10 gives about 1,000 requests per second; default 1)",
    )
    parser.add_argument(
        "--kafka",
        metavar="BOOTSTRAP",
        help="produce into Kafka at BOOTSTRAP (host:port[,host:port]) instead of "
        "writing lines; messages are keyed by client IP, and TLS/SASL come from the "
        "config's [kafka] section",
    )
    parser.add_argument("--topic", help="with --kafka: the topic to produce to")
    attacks = parser.add_argument_group("labelled attacks")
    attacks.add_argument(
        "--attacks",
        metavar="all|KIND[,KIND...]",
        help="inject labelled attack episodes of these kinds (all: every kind)",
    )
    attacks.add_argument(
        "--attack-count",
        type=int,
        metavar="N",
        help="episodes per attack kind (default: one per variant of the kind, 1 to 3); "
        "episodes of a kind cycle through its variants",
    )
    attacks.add_argument(
        "--labels",
        type=Path,
        metavar="DIR",
        help="write DIR/canonical.jsonl, DIR/labels.jsonl and DIR/attacks.json "
        "(the evaluation format); works without --attacks too (a benign-only set)",
    )
    attacks.add_argument(
        "--traps",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"add the benign traps ({', '.join(TRAPS)}) (default: on with --attacks)",
    )
    parser.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"gatewatch simulate: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    # Validated like every command's; ``--kafka`` logs in with ``[kafka]``'s settings.
    settings = settings_from(args)
    duration = args.duration if args.duration is not None else (None if args.count else 600.0)
    if args.start:
        start = parse_when(args.start).timestamp()
    else:
        # Traffic that ends now, so it lands inside the store's retention window.
        span = duration if duration is not None else args.count / 100.0
        start = time.time() - span
    options: dict[str, Any] = {
        "seed": args.seed,
        "start_ts": start,
        "duration_s": duration,
        "count": args.count,
    }
    if args.users is not None:
        options["web_users"] = args.users
    config = SimulationConfig(**options)
    if args.crowd != 1.0:
        config = config.crowded(args.crowd)
    if args.kafka and not args.topic:
        return _fail("--kafka needs --topic")
    if args.attack_count is not None and (args.attack_count < 1 or not args.attacks):
        return _fail("--attack-count needs --attacks and must be at least 1")
    try:
        kinds = parse_kinds(args.attacks) if args.attacks else ()
    except ValueError as error:
        return _fail(f"--attacks: {error}")
    episodes = build_episodes(config, kinds, count=args.attack_count) if kinds else []
    extra: list[Actor] = []
    if args.traps if args.traps is not None else bool(kinds):
        extra.extend(build_traps(config))
    extra.extend(episodes)
    requests = generate(config, extra)
    if args.labels is None:
        return _emit(args, settings, requests, args.output or "-")
    with LabelWriter(args.labels, episodes) as labels:
        recorded = labels.record(requests)
        if args.kafka or args.output:
            status = _emit(args, settings, recorded, args.output)
        else:
            for _ in recorded:
                pass
            status = 0
    events, attack_requests, attacks = labels.summary()
    print(
        f"labelled {events} events ({attack_requests} attack requests in {attacks} "
        f"episodes) in {args.labels}",
        file=sys.stderr,
    )
    return status


def _emit(
    args: argparse.Namespace,
    settings: Settings,
    requests: Iterable[SimRequest],
    output: str | None,
) -> int:
    """Write ``requests`` as log lines to ``output``, or produce them into Kafka (at
    ``--kafka``'s brokers, with the security settings of ``[kafka]``)."""
    renderer = RENDERERS[args.format]
    if args.kafka:
        connection = connection_options(settings.kafka)
        connection["bootstrap_servers"] = args.kafka.split(",")
        sent = asyncio.run(
            produce_lines(
                requests, renderer, connection=connection, topic=args.topic, rate=args.rate
            )
        )
        print(f"produced {sent} {args.format} messages to {args.topic}", file=sys.stderr)
        return 0
    if output == "-" or output is None:
        write_lines(requests, renderer, sys.stdout.buffer, rate=args.rate)
    else:
        with open(output, "ab") as out:
            written = write_lines(requests, renderer, out, rate=args.rate)
        print(f"wrote {written} {args.format} lines to {output}", file=sys.stderr)
    return 0
