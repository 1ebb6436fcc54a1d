"""Attacks by volume: scraping (one client far above its own rate on the catalogue),
data exfiltration (a principal pulling huge responses, page after page) and oversized
payloads (request bodies of megabytes to a route that normally gets a few hundred
bytes).
"""

from __future__ import annotations

from ingest.simulator import catalogue, endpoints, network
from ingest.simulator.attacks.base import (
    TOOL_AGENTS,
    AttackEpisode,
    EpisodeContext,
    Move,
    hosting_ipv4,
    leaked_username,
    web_user_id,
)
from ingest.simulator.automated import PARTNER_NAMES
from ingest.simulator.catalogue import PRODUCT_BASE, PRODUCTS
from ingest.simulator.endpoints import Endpoint
from ingest.simulator.identity import issue_jwt, token
from ingest.simulator.traps import ADMIN_IDS

_SCRAPER_AGENTS = (
    catalogue.BROWSER_AGENTS[0],
    catalogue.BROWSER_AGENTS[3],
    "Scrapy/2.11.0 (+https://scrapy.org)",
    "python-requests/2.31.0",
    "Mozilla/5.0 (compatible; PriceBot/1.4)",
)


class Scraping(AttackEpisode):
    """A competitor's scraper copying the catalogue from one address: it starts like a
    visitor (a request every few seconds) and after the first 15% of the episode pages
    through category listings and every product on them, and some reviews, at 8-25
    requests per second: far above its own rate and anyone else's."""

    kind = "scraping"
    accepted_kinds = ("rate_anomaly",)
    lane = "objects"
    nominal_s = 300.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        ip = network.cloud_ipv4(rng) if rng.random() < 0.5 else hosting_ipv4(rng)
        client = self.client(ip, rng.choice(_SCRAPER_AGENTS), protocol="HTTP/2.0")
        warm_span = context.duration_s * 0.15
        rate = 8.0 + 17.0 * rng.random()
        times = self.paced(max(2, int(warm_span / 4.0)), min_gap_s=1.0, span=warm_span)
        times += self.paced(
            int((context.duration_s - warm_span) * rate),
            min_gap_s=0.01,
            start=self.start_ts + warm_span,
        )
        listing, product, reviews = (
            endpoints.PRODUCT_LIST,
            endpoints.PRODUCT,
            endpoints.PRODUCT_REVIEWS,
        )
        categories = list(catalogue.CATEGORIES)
        rng.shuffle(categories)
        moves: list[Move] = []
        page = 0
        while len(moves) < len(times):
            category = categories[(page // 40) % len(categories)]
            page += 1
            query = f"category={category}&page={1 + (page - 1) % 40}&page_size=48"
            moves.append(Move(client, listing, listing.route, 200, query=query))
            for _ in range(24):
                item = PRODUCT_BASE + int(rng.random() * PRODUCTS)
                path = f"/api/v1/products/{item}"
                moves.append(Move(client, product, path, 404 if rng.random() < 0.02 else 200))
                if rng.random() < 0.15:
                    moves.append(Move(client, reviews, f"{path}/reviews", 200, query="page=1"))
        self.schedule(times, moves)
        self.description = (
            f"{ip} scrapes the catalogue: {len(times)} requests, up to {rate:.0f} per second"
        )


class DataExfiltration(AttackEpisode):
    """A stolen credential pulling data out page after page, from an address its owner
    never used. ``export``: an administrator's token paging through a full export
    (2-8 MB a page, 40-120 pages); ``bulk``: a dormant partner's API key paging through
    years of orders with a page size far above the integration's (1-4 MB a page)."""

    kind = "data_exfiltration"
    accepted_kinds = ("data_exfiltration",)
    variants = ("export", "bulk")
    lane = "objects"
    nominal_s = 240.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        client = self.client(hosting_ipv4(rng), rng.choice(TOOL_AGENTS))
        moves: list[Move] = []
        if self.variant == "bulk":
            index = 4
            name = PARTNER_NAMES[index]
            base = f"/api/v1/partners/{4100 + 37 * index}/orders"
            key = f"pk_live_{token(rng, 32)}"
            client.set_header("x-api-key", key)
            page_endpoint = Endpoint(
                "GET",
                endpoints.PARTNER_ORDERS.route,
                "partner-gateway",
                900,
                0.4,
                (1_000_000, 4_000_000),
            )
            times = self.paced(rng.randrange(60, 200), min_gap_s=0.5)
            for page in range(1, len(times) + 1):
                query = f"since=2015-01-01T00:00:00Z&page_size=1000&page={page}"
                moves.append(Move(client, page_endpoint, base, 200, name, query, key))
            who = f"partner key of {name}"
        else:
            admin = str(rng.choice(ADMIN_IDS))
            client.set_header(
                "authorization", f"Bearer {issue_jwt(rng, admin, int(self.start_ts))}"
            )
            dataset = rng.choice(("customers", "orders", "payments"))
            page_endpoint = Endpoint(
                "GET", endpoints.ADMIN_EXPORT.route, "accounts", 2200, 0.4, (2_000_000, 8_000_000)
            )
            times = self.paced(rng.randrange(40, 120), min_gap_s=1.0)
            for page in range(1, len(times) + 1):
                query = f"page={page}&page_size=5000&format=json"
                path = f"/api/v1/admin/exports/{dataset}"
                moves.append(Move(client, page_endpoint, path, 200, admin, query))
            who = f"admin {admin}'s token, {dataset} export"
        self.schedule(times, moves)
        self.description = f"{client.ip} pulls {len(moves)} large pages with the {who}"


class OversizedPayload(AttackEpisode):
    """Request bodies of 1.5-12 MB sent to a route that normally gets a few hundred
    bytes (a profile update, the cart, the login, an order), 10-40 of them: the gateway
    refuses those above its 10 MB limit (413), the service most of the rest (400)."""

    kind = "oversized_payload"
    accepted_kinds = ("oversized_payload",)
    lane = "surface"
    nominal_s = 90.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        client = self.client(hosting_ipv4(rng), rng.choice(TOOL_AGENTS))
        sub = str(web_user_id(rng))
        target, path, success = rng.choice(
            (
                (endpoints.USER_UPDATE, f"/api/v1/users/{sub}", 200),
                (endpoints.CART_ADD, endpoints.CART_ADD.route, 201),
                (endpoints.LOGIN, endpoints.LOGIN.route, 401),
                (endpoints.ORDER_CREATE, endpoints.ORDER_CREATE.route, 201),
            )
        )
        if target is endpoints.LOGIN:
            user = leaked_username(rng)
        else:
            user = sub
            client.set_header("authorization", f"Bearer {issue_jwt(rng, sub, int(self.start_ts))}")
        times = self.paced(rng.randrange(10, 40), min_gap_s=1.0)
        moves = []
        for _ in times:
            size = int(1_500_000 + rng.random() * 10_500_000)
            if size > 10_000_000:
                status, median = 413, 40.0
            else:
                status = 400 if rng.random() < 0.7 else success
                median = target.median_ms + size / 2_500.0  # upload at ~2.5 MB/s
            endpoint = Endpoint(
                target.method, target.route, target.service, median, 0.3, target.size, (size, size)
            )
            moves.append(Move(client, endpoint, path, status, user))
        self.schedule(times, moves)
        self.description = f"{client.ip} sends {len(moves)} bodies of megabytes to {target.route}"
