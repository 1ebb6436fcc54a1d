"""Where simulated clients come from: address pools for each kind of network.

Our own infrastructure lives in 10.0.0.0/8 (load balancers, cluster nodes, pods): a
deployment that trusts that range for X-Forwarded-For resolves every client
correctly. Residential clients get public-looking IPv4 addresses or IPv6 addresses
in the documentation prefix 2001:db8::/32; mobile clients sit behind carrier-grade
NAT in 100.64.0.0/10.
"""

from __future__ import annotations

import ipaddress
import random

LOAD_BALANCERS: tuple[str, ...] = ("10.0.1.10", "10.0.1.11", "10.0.1.12", "10.0.1.13")
"""The load balancer nodes in front of the gateway (trusted proxies)."""

PROBE_NODES: tuple[str, ...] = tuple(f"10.0.2.{21 + i}" for i in range(16))
"""Cluster nodes whose kubelets send health probes."""

# /16 prefixes of residential broadband ranges the simulated users connect from.
_RESIDENTIAL_V4: tuple[tuple[int, int], ...] = (
    (73, 162), (24, 48), (98, 207), (81, 2), (86, 140), (92, 40), (109, 150),
    (176, 24), (188, 77), (151, 30), (84, 115), (95, 91), (213, 47), (71, 190),
)  # fmt: skip
# Carrier-grade NAT blocks (within 100.64.0.0/10) of two mobile carriers.
_CGNAT_BLOCKS: tuple[tuple[int, int], ...] = ((100, 72), (100, 73), (100, 101), (100, 118))
# Public egress ranges of corporate networks and cloud providers.
_CORPORATE_V4: tuple[tuple[int, int, int], ...] = (
    (198, 51, 100),
    (203, 0, 113),
    (192, 0, 2),
    (145, 40, 12),
)
_CLOUD_V4: tuple[tuple[int, int], ...] = ((52, 31), (34, 120), (20, 61), (35, 190), (13, 48))
CRAWLER_PREFIXES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "googlebot": ((66, 249, 66), (66, 249, 68), (66, 249, 79)),
    "bingbot": ((157, 55, 39), (40, 77, 167), (207, 46, 13)),
}


def residential_ipv4(rng: random.Random) -> str:
    a, b = rng.choice(_RESIDENTIAL_V4)
    return f"{a}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def residential_ipv6(rng: random.Random) -> str:
    """An address in 2001:db8::/32, compressed as gateways and the normaliser write it."""
    prefix = (0x2001_0DB8 << 96) | (rng.getrandbits(32) << 64)
    return str(ipaddress.IPv6Address(prefix | rng.getrandbits(64)))


def cgnat_ipv4(rng: random.Random) -> str:
    a, b = rng.choice(_CGNAT_BLOCKS)
    return f"{a}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def corporate_egress(rng: random.Random, site: int) -> str:
    a, b, c = _CORPORATE_V4[site % len(_CORPORATE_V4)]
    return f"{a}.{b}.{c}.{10 + site // len(_CORPORATE_V4) * 16 + rng.randrange(16)}"


def corporate_internal(rng: random.Random) -> str:
    """A workstation address behind a corporate proxy (the proxy reports it in XFF)."""
    return f"172.{16 + rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def cloud_ipv4(rng: random.Random) -> str:
    a, b = rng.choice(_CLOUD_V4)
    return f"{a}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def crawler_ipv4(rng: random.Random, bot: str) -> str:
    a, b, c = rng.choice(CRAWLER_PREFIXES[bot])
    return f"{a}.{b}.{c}.{rng.randrange(1, 255)}"


def ephemeral_port(rng: random.Random) -> int:
    return rng.randrange(32768, 61000)
