"""How requests travel: credentials over plain HTTP or outdated TLS (insecure
transport), and requests the gateway cannot make sense of (malformed requests).
"""

from __future__ import annotations

from ingest.simulator import catalogue, endpoints, network
from ingest.simulator.attacks.base import (
    OLD_TLS_AGENTS,
    TOOL_AGENTS,
    AttackEpisode,
    EpisodeContext,
    Move,
    hosting_ipv4,
    leaked_username,
    web_user_id,
)
from ingest.simulator.catalogue import PRODUCT_BASE, PRODUCTS
from ingest.simulator.endpoints import Endpoint
from ingest.simulator.identity import issue_jwt


class InsecureTransport(AttackEpisode):
    """A client that exposes credentials on the wire: ``plain_http`` logs in and then
    browses over ``http://`` (password and bearer token in cleartext; a point-of-sale
    box configured years ago); ``weak_tls`` does the same over TLS 1.0 or 1.1 (an old
    Java, Android 4 or Internet Explorer client)."""

    kind = "insecure_transport"
    accepted_kinds = ("insecure_transport",)
    variants = ("plain_http", "weak_tls")
    lane = "credentials"
    nominal_s = 180.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        agent = rng.choice(OLD_TLS_AGENTS)
        ip = network.residential_ipv4(rng) if rng.random() < 0.5 else network.cloud_ipv4(rng)
        if self.variant == "plain_http":
            client = self.client(ip, agent, scheme="http", tls_version="")
            how = "plain HTTP"
        else:
            version = rng.choice(("TLSv1.0", "TLSv1.1"))
            client = self.client(ip, agent, tls_version=version)
            how = version
        username, sub = leaked_username(rng), str(web_user_id(rng))
        times = self.paced(rng.randrange(8, 40), min_gap_s=1.0)
        moves: list[Move] = []
        bearer = ""
        login = endpoints.LOGIN
        for t in times:
            if not bearer:
                typo = rng.random() < 0.1 and not moves
                moves.append(Move(client, login, login.route, 401 if typo else 200, username))
                if not typo:
                    bearer = f"Bearer {issue_jwt(rng, sub, int(t))}"
                continue
            draw = rng.random()
            if draw < 0.4:
                path = f"/api/v1/products/{PRODUCT_BASE + int(rng.random() * PRODUCTS)}"
                endpoint = endpoints.PRODUCT
            elif draw < 0.7:
                endpoint, path = endpoints.USER_ORDERS, f"/api/v1/users/{sub}/orders"
            elif draw < 0.9:
                endpoint, path = endpoints.CART, endpoints.CART.route
            else:
                endpoint, path = endpoints.USER, f"/api/v1/users/{sub}"
            moves.append(Move(client, endpoint, path, 200, sub, authorization=bearer))
        self.schedule(times, moves)
        self.description = f"{ip} ({agent.split()[0]}) logs in and browses over {how}"


def _odd(method: str, route: str = "$default") -> Endpoint:
    return Endpoint(method, route, "web", 1.0, 0.4, (0, 0))


# (method, path, status): what a fuzzer or a broken client sends, and the gateway's answer.
_MALFORMED: tuple[tuple[str, str, int], ...] = (
    ("TRACE", "/", 405),
    ("TRACE", "/api/v1/products", 405),
    ("TRACK", "/", 405),
    ("DEBUG", "/", 405),
    ("PROPFIND", "/", 501),
    ("PROPFIND", "/api/v1/", 501),
    ("MKCOL", "/api/v1/uploads", 501),
    ("LOCK", "/api/v1/products", 501),
    ("COPY", "/api/v1/orders", 501),
    ("FOO", "/", 501),
    ("CONNECT", "api.example.com:443", 400),
    ("GET", "", 400),
    ("GET", "", 400),
    ("POST", "", 400),
    ("GET", "http://example.org/", 400),
    ("GET", "/api/v1/products/%E0%A4%A", 400),
    ("GET", "/api/v1/%%32%65%%32%65/etc", 400),
    ("GET", "/api/v1/search?q=%", 400),
    ("POST", "/api/v1/cart", 400),
    ("PUT", "/api/v1/cart/items/%00", 400),
    ("DELETE", "/api/v1/products", 405),
    ("PATCH", "/api/v1/search", 405),
)


class MalformedRequests(AttackEpisode):
    """A protocol fuzzer from one rented server: 30-120 requests at 2-10 a second with
    methods the API does not serve (TRACE, TRACK, PROPFIND, MKCOL, made-up ones),
    empty or absolute-form targets, broken percent-encoding and undecodable bodies.
    The gateway answers 400, 405 or 501."""

    kind = "malformed_request"
    accepted_kinds = ("malformed_request",)
    lane = "surface"
    nominal_s = 60.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        agent = rng.choice(("", *TOOL_AGENTS[:3], catalogue.BROWSER_AGENTS[0]))
        client = self.client(hosting_ipv4(rng), agent)
        count = rng.randrange(30, 120)
        rate = 2.0 + 8.0 * rng.random()
        times = self.paced(count, min_gap_s=0.05, span=min(context.duration_s, count / rate))
        moves = []
        for _ in times:
            method, target, status = _MALFORMED[int(rng.random() * len(_MALFORMED))]
            path, _, query = target.partition("?")
            moves.append(Move(client, _odd(method), path, status, query=query))
        self.schedule(times, moves)
        self.description = f"{client.ip} sends {len(moves)} malformed requests"
