"""Insecure transport: credentials or tokens sent over plain HTTP, and TLS below 1.2.

Per client IP and route, one finding per episode: a misconfigured client repeats the
same mistake on every request, and the SOC needs to know which client and route.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from detectors.base import Detector, DetectorParams
from detectors.episodes import Episodes
from gatewatch.event import Event
from gatewatch.finding import EntityType

_WEAK_TLS = frozenset({"SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"})


class InsecureTransportParams(DetectorParams):
    plain_http: bool = Field(
        default=True, description="flag credentials sent over http:// (not https)"
    )
    min_tls: bool = Field(default=True, description="flag TLS below 1.2")
    episode_quiet_s: Annotated[float, Field(gt=0)] = 600.0


class InsecureTransport(Detector[InsecureTransportParams]):
    name: ClassVar[str] = "insecure_transport"
    kinds: ClassVar[tuple[str, ...]] = ("insecure_transport",)
    Params: ClassVar[type[DetectorParams]] = InsecureTransportParams

    def __init__(self, params: InsecureTransportParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        self.episodes = Episodes(
            self, "insecure_transport", EntityType.IP, quiet_s=params.episode_quiet_s
        )

    def observe(self, event: Event) -> None:
        params = self.params
        weak_tls = params.min_tls and event.tls_version in _WEAK_TLS
        # Plain HTTP only matters when the request carries a credential: a header, a
        # key, or a login body. Health checks on http:// inside the cluster are fine.
        cleartext = (
            params.plain_http
            and event.scheme == "http"
            and bool(event.api_key or "authorization" in event.headers or event.user)
        )
        if not (weak_tls or cleartext) or self.allow.allows(event):
            return
        entity = event.client_ip
        if self.episodes.add_evidence(entity, event.ts, event.request_id):
            return
        what = f"{event.tls_version}, below TLS 1.2," if weak_tls else "plain HTTP with credentials"
        self.episodes.report(
            entity,
            ts=event.ts,
            first_ts=event.ts,
            evidence=[event.request_id],
            summary=f"{entity} called {event.method} {event.route} over {what}",
            score=0.9 if cleartext else 0.7,
            subkind="cleartext_credentials" if cleartext else "weak_tls",
        )

    def advance(self, watermark: float) -> None:
        self.episodes.advance(watermark)

    def tracked(self) -> int:
        return len(self.episodes)
