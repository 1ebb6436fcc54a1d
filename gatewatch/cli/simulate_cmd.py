"""``gatewatch simulate``: realistic API traffic in any supported log format."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from gatewatch.cli.common import parse_when
from ingest.simulator.kafka_output import produce_lines
from ingest.simulator.output import write_lines
from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate

RENDER_FORMATS = tuple(RENDERERS)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate",
        help="write realistic simulated API traffic as log lines",
        description=(
            "Generate realistic API traffic (users with sessions, partners with API keys, "
            "corporate NAT, mobile CGNAT, crawlers, health checks, password typos) in any "
            "supported log format. Deterministic for a seed and --start: they give the same "
            "lines. Event time starts at --start and advances by simulated time, never "
            "the wall clock; --rate only paces how fast lines are written."
        ),
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
        default="-",
        metavar="FILE",
        help="file to append to, or - for stdout (default)",
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
        "--kafka",
        metavar="BOOTSTRAP",
        help="produce into Kafka at BOOTSTRAP (host:port[,host:port]) instead of "
        "writing lines; messages are keyed by client IP",
    )
    parser.add_argument("--topic", help="with --kafka: the topic to produce to")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
    renderer = RENDERERS[args.format]
    requests = generate(config)
    if args.kafka:
        if not args.topic:
            print("gatewatch simulate: --kafka needs --topic", file=sys.stderr)
            return 2
        sent = asyncio.run(
            produce_lines(
                requests, renderer, bootstrap_servers=args.kafka, topic=args.topic, rate=args.rate
            )
        )
        print(f"produced {sent} {args.format} messages to {args.topic}", file=sys.stderr)
        return 0
    if args.output == "-":
        written = write_lines(requests, renderer, sys.stdout.buffer, rate=args.rate)
    else:
        with open(args.output, "ab") as out:
            written = write_lines(requests, renderer, out, rate=args.rate)
        print(f"wrote {written} {args.format} lines to {args.output}", file=sys.stderr)
    return 0
