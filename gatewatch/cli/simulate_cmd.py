"""``gatewatch simulate``: realistic API traffic in any supported log format."""

from __future__ import annotations

import argparse
from typing import Any

RENDER_FORMATS = (
    "canonical",
    "kong",
    "envoy",
    "envoy-json",
    "nginx",
    "nginx-json",
    "apache",
    "traefik",
    "aws-apigw",
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate",
        help="write realistic simulated API traffic as log lines",
        description=(
            "Generate realistic API traffic (users with sessions, partners with API keys, "
            "corporate NAT, mobile CGNAT, crawlers, health checks, password typos) in any "
            "supported log format. Deterministic for a seed: the same seed gives the same "
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from gatewatch.cli.simulate_run import simulate  # noqa: PLC0415 - wired below

    return simulate(args)
