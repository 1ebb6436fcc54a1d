"""One simulated API request: everything any supported gateway could log about it.

A ``SimRequest`` is ground truth, richer than any single log line: it knows both the
real client (``client_ip``) and the address the gateway's socket saw (``peer_ip``: a
load balancer, or the client itself), and which actor made it (``actor``,
``attack_id``). Each renderer in ``ingest.simulator.render`` writes the subset its
gateway logs. It is a ``NamedTuple`` rather than a dataclass because the simulator
builds hundreds of thousands per second and tuple construction is the cheapest
immutable record Python has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class SimRequest(NamedTuple):
    """A request with the canonical event fields (DESIGN.md) plus what renderers need.

    ``ts`` is event time in epoch seconds. ``headers`` holds request headers as the
    gateway received them, lower-case names (``authorization``, ``x-api-key``,
    ``cookie``, ``referer``, ``content-type``, ``x-forwarded-for``); treat it as
    read-only. ``request_bytes`` is the whole request (line, headers and body, like
    NGINX ``$request_length``), ``request_body_bytes`` its body alone;
    ``response_bytes`` is the response body. ``upstream_ms`` is the time spent in the
    upstream service, negative when no upstream answered. ``route`` is the template
    the API declares (``/api/v1/users/{userId}``) and ``service`` the upstream service
    that serves it, at ``upstream_host``. ``attack_id`` is empty for benign traffic.
    ``body`` is the request body as text, for the few requests whose body matters to a
    reader (injection payloads); empty otherwise, even when ``request_body_bytes`` is not.
    """

    request_id: str
    ts: float
    client_ip: str
    peer_ip: str
    client_port: int
    method: str
    scheme: str
    host: str
    path: str
    query: str
    protocol: str
    status: int
    latency_ms: float
    upstream_ms: float
    request_bytes: int
    request_body_bytes: int
    response_bytes: int
    user_agent: str
    user: str
    api_key: str
    tls_version: str
    headers: Mapping[str, str]
    route: str
    service: str
    upstream_host: str
    actor: str
    attack_id: str = ""
    body: str = ""

    @property
    def uri(self) -> str:
        """The request target as sent: path and, when there is one, ``?query``."""
        return f"{self.path}?{self.query}" if self.query else self.path
