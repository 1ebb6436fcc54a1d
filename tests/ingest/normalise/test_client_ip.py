from __future__ import annotations

from typing import Any

import pytest

from gatewatch.errors import ParseError
from ingest.normalise.client_ip import ClientIpResolver

TRUSTED = ["10.0.0.0/8", "2001:db8:ffff::/48"]


@pytest.mark.parametrize(
    ("peer", "xff", "forwarded", "expected"),
    [
        ("203.0.113.9", None, None, "203.0.113.9"),
        ("203.0.113.9:51234", None, None, "203.0.113.9"),
        ("[2001:db8::7]:443", None, None, "2001:db8::7"),
        ("2001:0db8:0000:0000:0000:0000:0000:0007", None, None, "2001:db8::7"),
        ("::ffff:198.51.100.4", None, None, "198.51.100.4"),
        # trusted load balancer: the client is the first untrusted hop from the right
        ("10.0.0.5", "198.51.100.7", None, "198.51.100.7"),
        ("10.0.0.5", "1.2.3.4, 198.51.100.7, 10.1.1.1", None, "198.51.100.7"),
        ("10.0.0.5", "10.2.2.2, 10.3.3.3", None, "10.2.2.2"),  # all trusted: the leftmost
        # an untrusted peer cannot choose its address through the header
        ("203.0.113.9", "1.1.1.1", None, "203.0.113.9"),
        # RFC 7239 Forwarded
        ("10.0.0.5", None, "for=192.0.2.60;proto=https;by=10.0.0.5", "192.0.2.60"),
        ("10.0.0.5", None, 'for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        # no peer logged (Envoy's default format): the chain is all we have
        (None, "198.51.100.7, 10.0.0.9", None, "198.51.100.7"),
        ("-", "198.51.100.7", None, "198.51.100.7"),
        # a garbled hop stops the walk at the last good address
        ("10.0.0.5", "198.51.100.7, unknown", None, "10.0.0.5"),
    ],
)
def test_resolve(peer: Any, xff: Any, forwarded: Any, expected: str) -> None:
    assert ClientIpResolver(TRUSTED).resolve(peer, xff, forwarded) == expected


@pytest.mark.parametrize(
    ("peer", "xff"),
    [(None, None), ("", None), ("not-an-ip", None), ("999.1.1.1", None), (12345, None)],
)
def test_invalid_or_missing_address(peer: Any, xff: Any) -> None:
    with pytest.raises(ParseError, match="client"):
        ClientIpResolver(TRUSTED).resolve(peer, xff, None)


def test_cache_stays_bounded() -> None:
    resolver = ClientIpResolver(TRUSTED)
    for i in range(70_000):
        resolver.resolve(f"198.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", None, None)
    assert len(resolver._seen) <= 65_536
