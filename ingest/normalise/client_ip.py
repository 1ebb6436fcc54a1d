"""Which address is the client: the peer, or what trusted proxies say it forwarded.

X-Forwarded-For and Forwarded are believed only as far as they were written by
proxies in ``trusted_proxies``: walking the chain from the nearest hop outwards, the
first address that is not a trusted proxy is the client. A client can prepend any
address it likes to these headers, so an untrusted peer's headers are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from gatewatch.errors import ParseError

_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_CACHE_MAX = 65_536


class ClientIpResolver:
    """Resolves and normalises client IPs (IPv4 dotted, IPv6 compressed, no port).

    >>> r = ClientIpResolver(["10.0.0.0/8"])
    >>> r.resolve("10.1.2.3:443", "198.51.100.7, 10.9.9.9", None)
    '198.51.100.7'
    >>> r.resolve("203.0.113.5", "198.51.100.7", None)  # untrusted peer: header ignored
    '203.0.113.5'
    >>> r.resolve("[2001:db8::1]:8080", None, None)
    '2001:db8::1'
    """

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.trusted_proxies = tuple(trusted_proxies)
        self._networks: tuple[_IpNetwork, ...] = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in self.trusted_proxies
        )
        # Normalised text and trust per address seen; addresses repeat heavily.
        self._seen: dict[str, tuple[str, bool]] = {}

    def resolve(self, peer: Any, forwarded_for: Any, forwarded: Any) -> str:
        """The client address for one request, or ``ParseError`` when there is none."""
        chain = _forwarded_chain(forwarded_for, forwarded)
        if peer is not None and peer not in ("", "-"):
            address, trusted = self._lookup(peer)
            if not chain or not trusted:
                return address
        elif not chain:
            raise ParseError("missing client IP")
        # Nearest hop last: walk outwards past trusted proxies.
        client = ""
        for hop in reversed(chain):
            try:
                client, trusted = self._lookup(hop)
            except ParseError:
                break  # an obfuscated or garbled hop: stop at the last good address
            if not trusted:
                return client
        if client:
            return client
        if peer is not None and peer not in ("", "-"):
            return self._lookup(peer)[0]
        raise ParseError(f"client_ip: no valid address in forwarding headers {chain[:3]!r}")

    def _lookup(self, value: Any) -> tuple[str, bool]:
        if not isinstance(value, str):
            raise ParseError(f"client_ip: expected text, got {type(value).__name__}")
        known = self._seen.get(value)
        if known is not None:
            return known
        address = _parse_address(value)
        result = (str(address), any(address in net for net in self._networks))
        if len(self._seen) >= _CACHE_MAX:
            self._seen.clear()
        self._seen[value] = result
        return result


def _parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    text = value.strip().strip('"')
    if text.startswith("["):  # [v6]:port or [v6]
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    text = text.split("%", 1)[0]  # zone index
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        shown = value if len(value) <= 60 else value[:60] + "..."
        raise ParseError(f"client_ip: not an IP address {shown!r}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_chain(forwarded_for: Any, forwarded: Any) -> list[str]:
    if isinstance(forwarded_for, str) and forwarded_for not in ("", "-"):
        return [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    if isinstance(forwarded, str) and forwarded not in ("", "-"):
        return _forwarded_for_values(forwarded)
    return []


def _forwarded_for_values(header: str) -> list[str]:
    """The ``for=`` values of an RFC 7239 Forwarded header, in order."""
    hops = []
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.lower() == "for" and value:
                hops.append(value.strip('"'))
    return hops
