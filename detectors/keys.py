"""Credentials out of place: one key or token used from everywhere, and keys in URLs.

**Token misuse**, per credential (``api_key``, and the ``authorization`` header, which
the ingest masks as ``Bearer fp:...``) in a window of event time: used from many
distinct addresses, in many distinct networks (``/24``, ``/48``) spread over many
address blocks (``/16``, ``/32``: unrelated providers), and either concurrently
(requests keep switching back to addresses already seen: several parties hold it) or
from very many addresses in turn (rotation through proxies). Benign look-alikes: a
phone roaming across carrier-NAT addresses moves on rather than back, and stays within
its carrier's few address blocks; a partner calls from two or three fixed addresses;
an application key embedded in a public client is used by many principals (more than
``shared_key_min_users``): not a personal credential, so not judged.

**Key in URL**: a request whose query string carries a credential (the ingest masks it
as ``name=fp:...``): it ends up in proxy logs, browser history and referrers. One low
severity episode per API key (or per address when the request has no key).
"""

from __future__ import annotations

import ipaddress
import math
from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator

from detectors.base import Detector, DetectorParams
from detectors.episodes import Episodes
from detectors.state import DistinctCounter, EntityTable
from gatewatch.event import Event
from gatewatch.finding import EntityType, Severity

Positive = Annotated[float, Field(gt=0)]
_MEMO_MAX = 65_536
_CLOSE_EVERY_S = 10.0


class TokenMisuseParams(DetectorParams):
    window_s: Positive = 900.0
    min_ips: Annotated[int, Field(ge=2)] = Field(
        default=8, description="distinct addresses in the window (a partner has a few)"
    )
    min_networks: Annotated[int, Field(ge=1)] = Field(
        default=4, description="distinct /24 or /48 networks among them"
    )
    min_prefixes: Annotated[int, Field(ge=1)] = Field(
        default=6,
        description="distinct /16 or /32 blocks among them: a roaming phone stays within "
        "its carrier's few",
    )
    min_returns: Annotated[int, Field(ge=1)] = Field(
        default=5, description="switches back to an address already seen: concurrent use"
    )
    rotation_min_ips: Annotated[int, Field(ge=2)] = Field(
        default=20, description="addresses that flag without concurrency (a phone has fewer)"
    )
    shared_key_min_users: Annotated[int, Field(ge=2)] = Field(
        default=4, description="principals on one credential making it an application key"
    )
    bearer_tokens: bool = Field(default=True, description="also follow authorization tokens")
    key_in_url: bool = Field(default=True, description="flag credentials in query strings")
    key_in_url_severity: Severity = Severity.LOW
    distinct_exact_limit: Annotated[int, Field(ge=8)] = 64
    evidence_ring: Annotated[int, Field(ge=1, le=1000)] = 32
    ttl_s: Positive = 3600.0
    max_entities: Annotated[int, Field(gt=0)] = 100_000
    episode_quiet_s: Positive = 1800.0

    @model_validator(mode="after")
    def _ttl_covers_window(self) -> Self:
        if self.ttl_s < self.window_s:
            raise ValueError("ttl_s must be at least window_s: state would expire in-window")
        return self


class _Credential:
    """One credential in the current window. Most are used from one address: the sets
    of addresses and networks only exist from the second on, the evidence ring once
    half of ``min_ips`` addresses have used it."""

    __slots__ = (
        "blocks",
        "first_request",
        "ip",
        "ips",
        "nets",
        "reported",
        "returns",
        "ring",
        "start",
        "total",
        "user",
        "users",
    )

    def __init__(self) -> None:
        self.reported = False
        self.restart(-math.inf)

    def restart(self, ts: float) -> None:
        self.start = ts
        self.ip = self.user = ""  # the last address; the first principal
        self.first_request = ""  # evidence from before the second address
        self.ips: DistinctCounter | None = None
        self.nets: DistinctCounter | None = None  # /24 and /48 networks
        self.blocks: DistinctCounter | None = None  # /16 and /32 address blocks
        self.users: set[str] | None = None
        self.ring: list[str] | None = None
        self.returns = self.total = 0


class _Count:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class TokenMisuse(Detector[TokenMisuseParams]):
    name: ClassVar[str] = "token_misuse"
    kinds: ClassVar[tuple[str, ...]] = ("token_misuse",)
    Params: ClassVar[type[DetectorParams]] = TokenMisuseParams

    def __init__(self, params: TokenMisuseParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        self.credentials: EntityTable[str, _Credential] = EntityTable(
            _Credential, ttl_s=params.ttl_s, max_entities=params.max_entities
        )
        self.in_url: EntityTable[str, _Count] = EntityTable(
            _Count, ttl_s=params.episode_quiet_s, max_entities=params.max_entities
        )
        quiet = params.episode_quiet_s
        self.episodes = Episodes(self, "token_misuse", EntityType.API_KEY, quiet_s=quiet)
        self.url_episodes = {
            t: Episodes(self, "token_misuse", t, quiet_s=quiet)
            for t in (EntityType.API_KEY, EntityType.IP)
        }
        self._networks: dict[str, tuple[str, str]] = {}
        self._peek = self.credentials.peek
        self._next_close = -math.inf

    def reconfigure(self, params: TokenMisuseParams) -> None:
        super().reconfigure(params)
        self.credentials.ttl_s, self.credentials.max_entities = params.ttl_s, params.max_entities
        self.in_url.ttl_s, self.in_url.max_entities = params.episode_quiet_s, params.max_entities
        for episodes in (self.episodes, *self.url_episodes.values()):
            episodes.quiet_s = params.episode_quiet_s

    def observe(self, event: Event) -> None:
        p, key, query = self.params, event.api_key, event.query
        if query and p.key_in_url and "=fp:" in query:
            self._key_in_url(event)
        # The masked header ("Bearer fp:...") is the token's identity as it is.
        token = event.headers.get("authorization") if p.bearer_tokens else None
        if token and "fp:" not in token:
            token = None
        if not (key or token) or (not self.allow.empty and self.allow.allows(event)):
            return
        if key:
            self._use(event, key)
        if token:
            self._use(event, token)

    def _use(self, event: Event, credential: str) -> None:
        """One use of a credential: an API key, or an authorization header."""
        p, ts, ip, user = self.params, event.ts, event.client_ip, event.user
        state = self._peek(credential)
        if state is None or ts - state.start >= p.window_s:
            # Activity is marked once a window, not per request: TTL >= window.
            state = self.credentials.get(credential, ts)
            state.restart(ts)
        state.total += 1
        if user and user != state.user:
            self._principal(state, user)
        if state.ring is not None or state.reported:  # spreading: keep evidence
            if state.reported and not self.episodes.add_evidence(
                _entity(credential), ts, event.request_id
            ):
                state.reported = False  # the episode closed: a new one needs new evidence
            if not state.reported:
                self._remember(state, event.request_id)
        if not ip or ip == state.ip:
            return
        if not state.ip:
            state.ip, state.first_request = ip, event.request_id
            return
        if state.ips is None or state.nets is None or state.blocks is None:
            limit = p.distinct_exact_limit
            state.ips = DistinctCounter(exact_limit=limit, precision=8)
            state.nets = DistinctCounter(exact_limit=limit, precision=8)
            state.blocks = DistinctCounter(exact_limit=limit, precision=8)
            state.ips.add(state.ip)
            net, block = self._networks_of(state.ip)
            state.nets.add(net)
            state.blocks.add(block)
        if state.ips.add(ip):
            net, block = self._networks_of(ip)
            state.nets.add(net)
            state.blocks.add(block)
            if state.ring is None and state.ips.count() * 2 >= p.min_ips:
                # Halfway to suspicious (a partner's few addresses never are): from now
                # on its requests are kept as evidence.
                state.ring = [state.first_request]
                self._remember(state, event.request_id)
        else:
            state.returns += 1
        state.ip = ip
        if not state.reported or not state.total % 32:  # once open: refresh now and then
            self._judge(event, credential, state)

    def _principal(self, state: _Credential, user: str) -> None:
        if not state.user:
            state.user = user
        elif state.users is None:
            state.users = {state.user, user}
        elif len(state.users) < self.params.shared_key_min_users:
            state.users.add(user)

    def _remember(self, state: _Credential, request_id: str) -> None:
        ring = state.ring
        if ring is None:
            ring = state.ring = []
        ring.append(request_id)
        if len(ring) > self.params.evidence_ring:
            del ring[0]

    def _judge(self, event: Event, credential: str, state: _Credential) -> None:
        p = self.params
        if state.ips is None or state.nets is None or state.blocks is None:
            return
        if state.users is not None and len(state.users) >= p.shared_key_min_users:
            return  # an application key shared by design
        ips, nets, blocks = state.ips.count(), state.nets.count(), state.blocks.count()
        if ips < p.min_ips or nets < p.min_networks or blocks < p.min_prefixes:
            return
        concurrent = state.returns >= p.min_returns
        if not concurrent and ips < p.rotation_min_ips:
            return
        entity = _entity(credential)
        scheme = credential.partition(" ")[0].lower()
        what = "api key" if entity == credential else f"{scheme} token"
        owner = f", principal {state.user}" if state.user else ""
        self.episodes.report(
            entity,
            ts=event.ts,
            first_ts=state.start,
            evidence=() if state.reported else (state.ring or [event.request_id]),
            summary=f"{what} {entity} was used from {ips} addresses in {nets} networks "
            f"and {blocks} address blocks "
            f"in {max(1.0, event.ts - state.start):.0f} s ({state.returns} switches back to "
            f"an address already seen, {state.total} requests{owner})",
            score=min(0.95, 0.5 + 0.02 * ips + 0.05 * nets),
            subkind="concurrent_use" if concurrent else "address_rotation",
            extra={"addresses": ips, "networks": nets, "blocks": blocks, "returns": state.returns},
        )
        state.reported, state.ring = True, None

    def _key_in_url(self, event: Event) -> None:
        if self.allow.allows(event):
            return
        entity = event.api_key or event.client_ip
        if not entity:
            return
        kind = EntityType.API_KEY if event.api_key else EntityType.IP
        episodes = self.url_episodes[kind]
        count = self.in_url.get(entity, event.ts)
        count.n += 1
        query = event.query
        at = query.find("=fp:")
        param = query[query.rfind("&", 0, at) + 1 : at]
        where = f"on {event.method} {event.route or '(no route)'}"
        if event.api_key:
            who = event.client_ip or "an unknown address"
            summary = f"api key {entity} sent in the URL query ({param}=...) in {count.n} "
            summary += f"requests, the last by {who} {where}"
        else:
            summary = f"{entity} sent a credential in the URL query ({param}=...) in "
            summary += f"{count.n} requests, the last {where}"
        episodes.report(
            entity,
            ts=event.ts,
            first_ts=event.ts,
            evidence=[event.request_id],
            summary=summary,
            score=0.9,
            severity=self.params.key_in_url_severity,
            subkind="key_in_url",
            extra={"parameter": param, "requests": count.n},
        )

    def _networks_of(self, ip: str) -> tuple[str, str]:
        known = self._networks.get(ip)
        if known is None:
            known = (network_of(ip, 24, 48), network_of(ip, 16, 32))
            if len(self._networks) >= _MEMO_MAX:
                self._networks.clear()
            self._networks[ip] = known
        return known

    def advance(self, watermark: float) -> None:
        self.credentials.expire(watermark)
        self.in_url.expire(watermark)
        # Closing scans every open episode, and a legacy API whose clients all send keys
        # in URLs has thousands open: every 10 s of event time is soon enough.
        if watermark >= self._next_close:
            self._next_close = watermark + _CLOSE_EVERY_S
            for episodes in (self.episodes, *self.url_episodes.values()):
                episodes.advance(watermark)

    def tracked(self) -> int:
        episodes = (self.episodes, *self.url_episodes.values())
        return len(self.credentials) + len(self.in_url) + sum(map(len, episodes))


def _entity(credential: str) -> str:
    """What a finding names: the fingerprint of an ``authorization`` header's token.

    >>> _entity("Bearer fp:0123456789abcdef"), _entity("fp:0123456789abcdef")
    ('fp:0123456789abcdef', 'fp:0123456789abcdef')
    """
    return credential.rpartition(" ")[2]


def network_of(ip: str, v4: int = 24, v6: int = 48) -> str:
    """The network of an address: ``/v4`` (IPv4) or ``/v6`` (IPv6); the text itself if
    not an address.

    >>> network_of("203.0.113.9"), network_of("2001:db8:1:2::5"), network_of("x")
    ('203.0.113.0/24', '2001:db8:1::/48', 'x')
    >>> network_of("::ffff:198.51.100.7", 16, 32), network_of("2001:db8:1:2::5", 16, 32)
    ('198.51.0.0/16', '2001:db8::/32')
    >>> network_of("198.51.100.7", 16), network_of("198.51.100.7", 20)
    ('198.51.0.0/16', '198.51.96.0/20')
    """
    parts = ip.split(".")
    if len(parts) == 4 and not v4 % 8 and all(p.isdigit() for p in parts):  # the usual case
        keep = v4 // 8
        return ".".join(parts[:keep] + ["0"] * (4 - keep)) + f"/{v4}"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = v4 if address.version == 4 else v6
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
