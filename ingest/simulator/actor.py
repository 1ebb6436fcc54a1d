"""The actor contract, and the shared machinery that turns an actor's choice into a request.

An ``Actor`` is anything that makes requests over simulated time: a user session, a
partner integration, a health probe, a crawler; later, a labelled attack episode,
which is just another actor whose requests carry an ``attack_id``. The engine
(``ingest.simulator.traffic``) keeps actors in a heap by ``next_ts`` and merges
their requests in timestamp order.

An actor decides *what* it asks for (endpoint, path, query, the status its
behaviour implies, who it claims to be). The ``Emitter`` fills in what the
infrastructure decides: request id, latency, sizes, the load balancer on the way,
the upstream pod, and the occasional server error.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from math import exp

from gatewatch.errors import GatewatchError
from ingest.simulator.endpoints import Endpoint
from ingest.simulator.identity import request_uuid
from ingest.simulator.network import LOAD_BALANCERS
from ingest.simulator.request import SimRequest

_LB_COUNT = len(LOAD_BALANCERS)
_new_tuple = tuple.__new__
# Request line, Host, Accept, Accept-Encoding and friends that every request carries.
_BASE_HEADER_BYTES = 150


class SimulationError(GatewatchError):
    """An actor broke its contract (for instance, scheduled itself in the past)."""


class World:
    """What an actor may do besides making requests: start other actors.

    An actor started during a step joins the simulation once that step returns; its
    ``next_ts`` must not be earlier than the current simulated time.
    """

    __slots__ = ("spawned",)

    def __init__(self) -> None:
        self.spawned: list[Actor] = []

    def spawn(self, actor: Actor) -> None:
        self.spawned.append(actor)


class Actor(ABC):
    """Something that acts over simulated time.

    The engine calls ``step(now, world)`` exactly when simulated time reaches
    ``next_ts`` (``now`` is that time). ``step`` returns the request the actor makes at
    that instant (its ``ts`` is ``now``), or ``None`` when it acted without a request
    (a population starting a session). Before returning it sets ``next_ts`` to when it
    acts next (never before ``now``), or to ``None`` when it is finished.

    An actor draws randomness only from its own ``random.Random`` (shared with the
    actors it spawns), so adding an actor, say an attack episode, leaves everyone
    else's traffic byte-for-byte unchanged.
    """

    __slots__ = ("next_ts",)

    def __init__(self, next_ts: float | None) -> None:
        self.next_ts = next_ts

    @abstractmethod
    def step(self, now: float, world: World) -> SimRequest | None:
        """Act at ``now``; reschedule by setting ``next_ts``."""


class Client:
    """How one client connection looks to the gateway; an actor may change it (mobile
    clients change address mid-session, a login adds an Authorization header).

    ``forwarded_for`` is an X-Forwarded-For chain the client side already carries
    (a corporate proxy naming the workstation). With ``via_lb`` the request reaches
    the gateway through one of our load balancers, which appends the client address.
    ``standing`` holds the lower-case headers the client sends with every request;
    change them with ``set_header`` (which keeps ``header_bytes`` right).
    """

    __slots__ = (
        "forwarded_for",
        "header_bytes",
        "host",
        "ip",
        "port",
        "protocol",
        "referers",
        "scheme",
        "standing",
        "tls_version",
        "user_agent",
        "via_lb",
    )

    def __init__(
        self,
        ip: str,
        port: int,
        user_agent: str,
        *,
        host: str,
        protocol: str = "HTTP/1.1",
        scheme: str = "https",
        tls_version: str = "TLSv1.3",
        via_lb: bool = False,
        forwarded_for: str = "",
        referers: tuple[str, ...] = (),
    ) -> None:
        self.ip = ip
        self.port = port
        self.user_agent = user_agent
        self.host = host
        self.protocol = protocol
        self.scheme = scheme
        self.tls_version = tls_version
        self.via_lb = via_lb
        self.forwarded_for = forwarded_for
        self.referers = referers
        self.standing: dict[str, str] = {}
        self.header_bytes = _BASE_HEADER_BYTES + len(user_agent) + len(host)

    def set_header(self, name: str, value: str | None) -> None:
        """Send ``name: value`` from now on (``None`` stops sending it)."""
        old = self.standing.pop(name, None)
        if old is not None:
            self.header_bytes -= len(name) + len(old) + 4
        if value is not None:
            self.standing[name] = value
            self.header_bytes += len(name) + len(value) + 4


class Emitter:
    """Builds the ``SimRequest`` for an actor's choice, drawing from the actor's RNG.

    ``actor`` names the kind of actor in every request it builds; ``attack_id``, set
    for an attack episode's emitter, labels them. ``server_error_rate`` is the chance
    that a request meets a 502, 503 or 504 instead of the status the actor expected.
    """

    __slots__ = ("_gauss", "_random", "actor", "attack_id", "rng", "server_error_rate")

    def __init__(
        self,
        rng: random.Random,
        actor: str,
        *,
        server_error_rate: float,
        attack_id: str = "",
    ) -> None:
        self.rng = rng
        self.actor = actor
        self.server_error_rate = server_error_rate
        self.attack_id = attack_id
        self._random = rng.random
        self._gauss = rng.gauss

    def emit(
        self,
        ts: float,
        endpoint: Endpoint,
        client: Client,
        path: str,
        status: int,
        *,
        query: str = "",
        user: str = "",
        api_key: str = "",
    ) -> SimRequest:
        """The request ``client`` makes to ``endpoint`` at ``ts``.

        ``status`` is what the actor's behaviour implies (a mistyped password: 401);
        the infrastructure may still turn it into a 5xx. ``user`` is the principal
        (on login and reset, the attempted username).
        """
        rand = self._random
        status, latency_ms, upstream, response_bytes = self._outcome(endpoint, status)
        body = endpoint.body[0] + int(rand() * endpoint.body_span) if endpoint.body_span else 0

        headers = client.standing.copy()
        extra = 0
        ip = client.ip
        if client.via_lb:
            peer = LOAD_BALANCERS[int(rand() * _LB_COUNT)]
            chain = client.forwarded_for
            forwarded = f"{chain}, {ip}" if chain else ip
            headers["x-forwarded-for"] = forwarded
            extra = len(forwarded) + 19
        else:
            peer = ip
            if client.forwarded_for:
                headers["x-forwarded-for"] = client.forwarded_for
                extra = len(client.forwarded_for) + 19
        referers = client.referers
        if referers and rand() < 0.8:
            referer = referers[int(rand() * len(referers))]
            headers["referer"] = referer
            extra += len(referer) + 11
        if body:
            headers["content-type"] = "application/json"
            extra += 52  # Content-Type and Content-Length

        upstreams = endpoint.upstreams
        # Built as a plain tuple in field order: the NamedTuple constructor (a Python
        # function of 27 arguments) costs more than everything else here but the uuid.
        return _new_tuple(
            SimRequest,
            (
                request_uuid(self.rng),  # request_id
                ts,
                ip,  # client_ip
                peer,  # peer_ip
                client.port,
                endpoint.method,
                client.scheme,
                client.host,
                path,
                query,
                client.protocol,
                status,
                latency_ms,
                upstream,  # upstream_ms
                client.header_bytes + extra + len(path) + len(query) + body,  # request_bytes
                body,  # request_body_bytes
                response_bytes,
                client.user_agent,
                user,
                api_key,
                client.tls_version,
                headers,
                endpoint.route,
                endpoint.service,
                upstreams[int(rand() * len(upstreams))],
                self.actor,
                self.attack_id,
                "",  # body: its text is left out; an episode that needs it adds it
            ),
        )

    def _outcome(self, endpoint: Endpoint, status: int) -> tuple[int, float, float, int]:
        """``(status, latency_ms, upstream_ms, response_bytes)``; upstream_ms is negative
        when no upstream answered."""
        rand = self._random
        if status < 500 and rand() < self.server_error_rate:
            draw = rand()
            status = 502 if draw < 0.3 else 503 if draw < 0.8 else 504

        overhead = 0.2 + rand() * 1.8
        if status >= 500:
            response_bytes = 60 + int(rand() * 120)
            if status == 503:  # no healthy upstream: the gateway answers itself
                upstream = -1.0
                overhead += rand() * 3.0
            elif status == 504:
                upstream = 30_000.0 + rand() * 50.0
            else:
                upstream = 2.0 + rand() * 30.0
        else:
            upstream = exp(endpoint.mu + endpoint.sigma * self._gauss())
            if status >= 400:
                response_bytes = 40 + int(rand() * 80)
                if status != 401:  # rejected early; a failed login still hashes
                    upstream *= 0.5
            elif status == 204:
                response_bytes = 0
            else:
                response_bytes = endpoint.size[0] + int(rand() * endpoint.size_span)
        # Rounded to the microsecond (int() is cheaper than round(); values are positive).
        if upstream > 0.0:
            upstream = int(upstream * 1000.0 + 0.5) / 1000.0
            latency = int((upstream + overhead) * 1000.0 + 0.5) / 1000.0
        else:
            latency = int(overhead * 1000.0 + 0.5) / 1000.0
        return status, latency, upstream, response_bytes
