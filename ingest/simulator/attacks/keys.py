"""Token misuse: one API key or bearer token used from addresses all over the
internet within minutes (leaked, shared, or stolen), and API keys sent in the URL,
where every proxy, log and browser history keeps them.
"""

from __future__ import annotations

from ingest.simulator import endpoints, network
from ingest.simulator.attacks.base import (
    TOOL_AGENTS,
    AttackEpisode,
    EpisodeContext,
    Move,
    rotating_agent,
    spread_address,
    web_user_id,
)
from ingest.simulator.automated import PARTNER_NAMES
from ingest.simulator.endpoints import Endpoint
from ingest.simulator.identity import issue_jwt, token


def _partner(index: int) -> tuple[str, str]:
    """(name, path prefix) of the ``index``-th partner account."""
    return PARTNER_NAMES[index], f"/api/v1/partners/{4100 + 37 * index}"


class TokenMisuse(AttackEpisode):
    """``api_key``: a partner's API key, leaked in a public repository, used by 20-60
    addresses on every kind of network (home, mobile, cloud, hosting, IPv6) within
    minutes, each a few times; ``bearer``: one customer's bearer token replayed the
    same way; ``query``: a client sending its API key as ``?api_key=`` in the URL on
    every request (from 1-3 cloud addresses)."""

    kind = "token_misuse"
    accepted_kinds = ("token_misuse",)
    variants = ("api_key", "bearer", "query")
    lane = "credentials"
    nominal_s = 300.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        plan: list[tuple[float, Move]] = []
        if self.variant == "query":
            name, base = _partner(3)
            key = f"pk_live_{token(rng, 32)}"
            agent = rng.choice(TOOL_AGENTS[:4])
            clients = [
                self.client(network.cloud_ipv4(rng), agent)
                for _ in range(1 + int(rng.random() * 3))
            ]
            times = self.paced(rng.randrange(20, 80), min_gap_s=0.5)
            for n, t in enumerate(times):
                query = f"api_key={key}&page={1 + n % 50}&page_size=200"
                move = Move(
                    clients[n % len(clients)],
                    endpoints.PARTNER_INVENTORY,
                    f"{base}/inventory",
                    200,
                    name,
                    query,
                    key,
                )
                plan.append((t, move))
            self.description = f"{len(clients)} address(es) send {name}'s API key in the URL"
        else:
            sources = rng.randrange(20, 60)
            routes: tuple[tuple[Endpoint, str], ...]
            if self.variant == "bearer":
                sub = str(web_user_id(rng))
                bearer = f"Bearer {issue_jwt(rng, sub, int(self.start_ts) - 1800)}"
                user, key = sub, ""
                routes = (
                    (endpoints.USER, f"/api/v1/users/{sub}"),
                    (endpoints.USER_ORDERS, f"/api/v1/users/{sub}/orders"),
                    (endpoints.USER_ADDRESSES, f"/api/v1/users/{sub}/addresses"),
                    (endpoints.CART, endpoints.CART.route),
                )
                what = f"user {sub}'s bearer token"
            else:
                user, base = _partner(5)
                key, bearer = f"pk_live_{token(rng, 32)}", ""
                routes = (
                    (endpoints.PARTNER_INVENTORY, f"{base}/inventory"),
                    (endpoints.PARTNER_ORDERS, f"{base}/orders"),
                )
                what = f"{user}'s API key"
            for _ in range(sources):
                agent = rng.choice(TOOL_AGENTS) if rng.random() < 0.6 else rotating_agent(rng)
                client = self.client(spread_address(rng), agent)
                if bearer:
                    client.set_header("authorization", bearer)
                else:
                    client.set_header("x-api-key", key)
                first = self.start_ts + rng.random() * context.duration_s * 0.8
                for t in self.scattered(1 + int(rng.random() * 8), start=first):
                    endpoint, path = routes[int(rng.random() * len(routes))]
                    plan.append((t, Move(client, endpoint, path, 200, user, "", key)))
            plan.sort(key=lambda item: item[0])
            self.description = f"{what} used from {sources} addresses"
        self.schedule([t for t, _ in plan], [move for _, move in plan])
