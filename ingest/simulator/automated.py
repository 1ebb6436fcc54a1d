"""Machines: partner integrations, health probes and search-engine crawlers.

Each is benign traffic that a naive detector mistakes for an attack: partners call at
high, steady rates and page through whole inventories (bulk reads that look like
exfiltration), probes hit one path every ten seconds forever, crawlers walk through
thousands of product ids (enumeration to a naive eye) and meet many 404s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ingest.simulator import catalogue, endpoints, network
from ingest.simulator.actor import Actor, Client, Emitter, World
from ingest.simulator.catalogue import PRODUCT_BASE, PRODUCTS
from ingest.simulator.identity import token
from ingest.simulator.request import SimRequest

PARTNER_NAMES: tuple[str, ...] = (
    "northwind-traders",
    "contoso-retail",
    "fabrikam-supply",
    "tailspin-logistics",
    "wingtip-outlet",
    "adventure-works",
)
_INVENTORY_PAGES = 50
_SKUS = 8_000


class PartnerIntegration(Actor):
    """A partner's backend syncing inventory and orders with its API key.

    It calls from a few fixed cloud addresses at a steady ``rate`` (requests per
    second, low jitter), cycling through every inventory page. Its principal is the
    partner's account name, the consumer its key belongs to.
    """

    __slots__ = ("_base", "_clients", "_page", "api_key", "emitter", "name", "period", "rng")

    def __init__(
        self,
        rng: random.Random,
        *,
        name: str,
        partner_id: int,
        start_ts: float,
        rate: float,
        host: str,
        lb_share: float,
        server_error_rate: float = 0.002,
    ) -> None:
        self.rng = rng
        self.name = name
        self.period = 1.0 / rate
        super().__init__(start_ts + rng.random() * self.period)
        self.emitter = Emitter(rng, "partner", server_error_rate=server_error_rate)
        self.api_key = f"pk_live_{token(rng, 32)}"
        agent = rng.choice(
            (
                f"{name}-sync/3.{rng.randrange(10)}.{rng.randrange(10)} (+https://{name}.example)",
                "python-requests/2.31.0",
                "Go-http-client/1.1",
                "okhttp/4.12.0",
            )
        )
        self._clients: list[Client] = []
        for _ in range(2 + int(rng.random() * 2)):
            client = Client(
                network.cloud_ipv4(rng),
                network.ephemeral_port(rng),
                agent,
                host=host,
                tls_version="TLSv1.2" if rng.random() < 0.4 else "TLSv1.3",
                via_lb=rng.random() < lb_share,
            )
            client.set_header("x-api-key", self.api_key)
            self._clients.append(client)
        self._base = f"/api/v1/partners/{partner_id}"
        self._page = int(rng.random() * _INVENTORY_PAGES)

    def step(self, now: float, world: World) -> SimRequest | None:
        rand = self.rng.random
        client = self._clients[int(rand() * len(self._clients))]
        base = self._base
        draw = rand()
        if draw < 0.45:
            self._page = self._page % _INVENTORY_PAGES + 1
            endpoint, path, status = endpoints.PARTNER_INVENTORY, f"{base}/inventory", 200
            query = f"page={self._page}&page_size=200"
        elif draw < 0.75:
            endpoint, path, query = endpoints.PARTNER_ITEM, f"{base}/inventory/{_sku(rand)}", ""
            status = 404 if rand() < 0.01 else 200
        elif draw < 0.9:
            endpoint = endpoints.PARTNER_ITEM_UPDATE
            path, query = f"{base}/inventory/{_sku(rand)}", ""
            status = 409 if rand() < 0.005 else 200
        elif draw < 0.97:
            endpoint, path, status = endpoints.PARTNER_ORDERS, f"{base}/orders", 200
            since = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(now - 900))
            query = f"status=open&since={since}"
        else:
            endpoint, path, query, status = endpoints.PARTNER_SHIPMENT, f"{base}/shipments", "", 201
        self.next_ts = now + self.period * (0.85 + 0.3 * rand())
        return self.emitter.emit(
            now, endpoint, client, path, status, query=query, user=self.name, api_key=self.api_key
        )


def _sku(rand: Callable[[], float]) -> str:
    return f"SKU-{100_000 + int(rand() * _SKUS)}"


class HealthProbe(Actor):
    """A kubelet probing one gateway pod: ``GET /healthz`` every ``interval_s`` seconds,
    over plain HTTP from a cluster node, give or take a few milliseconds."""

    __slots__ = ("client", "emitter", "interval_s", "pod", "rng")

    def __init__(
        self,
        rng: random.Random,
        *,
        node_ip: str,
        pod: str,
        start_ts: float,
        interval_s: float,
    ) -> None:
        super().__init__(start_ts + rng.random() * interval_s)
        self.rng = rng
        self.interval_s = interval_s
        self.pod = pod
        self.emitter = Emitter(rng, "health-probe", server_error_rate=0.0)
        self.client = Client(
            node_ip,
            network.ephemeral_port(rng),
            catalogue.HEALTH_AGENT,
            host=pod,
            scheme="http",
            tls_version="",
        )

    def step(self, now: float, world: World) -> SimRequest | None:
        request = self.emitter.emit(
            now, endpoints.HEALTHZ, self.client, endpoints.HEALTHZ.route, 200
        )
        self.client.port = network.ephemeral_port(self.rng)  # a new connection per probe
        self.next_ts = now + self.interval_s + (self.rng.random() - 0.5) * 0.004
        return request._replace(upstream_host=self.pod)


class Crawler(Actor):
    """A search-engine crawler working through the public catalogue from one address.

    It walks product ids in order with small skips, so it touches thousands of
    distinct ids and meets the 404s of delisted products; it reads ``/robots.txt``
    now and then and pages through category listings.
    """

    __slots__ = ("_cursor", "client", "emitter", "rate", "rng")

    def __init__(
        self,
        rng: random.Random,
        *,
        bot: str,
        start_ts: float,
        rate: float,
        host: str,
        lb_share: float,
    ) -> None:
        self.rng = rng
        self.rate = rate
        super().__init__(start_ts + rng.expovariate(rate))
        self.emitter = Emitter(rng, "crawler", server_error_rate=0.002)
        self.client = Client(
            network.crawler_ipv4(rng, bot),
            network.ephemeral_port(rng),
            rng.choice(catalogue.CRAWLER_AGENTS[bot]),
            host=host,
            protocol="HTTP/1.1" if rng.random() < 0.5 else "HTTP/2.0",
            via_lb=rng.random() < lb_share,
        )
        self._cursor = int(rng.random() * PRODUCTS)

    def step(self, now: float, world: World) -> SimRequest | None:
        rand = self.rng.random
        draw = rand()
        if draw < 0.005:
            endpoint, path, query, status = endpoints.ROBOTS, endpoints.ROBOTS.route, "", 200
        elif draw < 0.85:
            self._cursor = (self._cursor + 1 + int(rand() * 3)) % PRODUCTS
            endpoint, query = endpoints.PRODUCT, ""
            path = f"/api/v1/products/{PRODUCT_BASE + self._cursor}"
            status = 404 if rand() < 0.04 else 200
        elif draw < 0.95:
            category = catalogue.CATEGORIES[int(rand() * len(catalogue.CATEGORIES))]
            endpoint, path = endpoints.PRODUCT_LIST, endpoints.PRODUCT_LIST.route
            query, status = f"category={category}&page={1 + int(rand() * 60)}", 200
        else:
            endpoint, query, status = endpoints.PRODUCT_REVIEWS, "page=1", 200
            path = f"/api/v1/products/{PRODUCT_BASE + int(rand() * PRODUCTS)}/reviews"
        self.next_ts = now + self.rng.expovariate(self.rate)
        return self.emitter.emit(now, endpoint, self.client, path, status, query=query)
