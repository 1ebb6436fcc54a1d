"""The simulated shop API: its routes, the services behind them, and how they behave.

Each ``Endpoint`` is one route of the API with the numbers that shape its traffic: a
log-normal latency (median and spread, in milliseconds) and the range of response
body sizes. Actors pick endpoints and fill in the concrete path; the ``Emitter``
(``ingest.simulator.actor``) samples latency and sizes from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Service:
    """An upstream service: its name and the pod addresses that serve it."""

    name: str
    upstreams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One API route and its behaviour.

    Latency is log-normal around ``median_ms`` with log-spread ``sigma``; ``size`` is
    the response body range on success and ``body`` the request body range (zero for
    bodiless methods).
    """

    method: str
    route: str
    service: str
    median_ms: float
    sigma: float
    size: tuple[int, int]
    body: tuple[int, int] = (0, 0)
    mu: float = field(init=False)
    size_span: int = field(init=False)
    body_span: int = field(init=False)
    upstreams: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        # Derived once: the emitter reads them for every request.
        object.__setattr__(self, "mu", math.log(self.median_ms))
        object.__setattr__(self, "size_span", self.size[1] - self.size[0] + 1)
        object.__setattr__(
            self, "body_span", self.body[1] - self.body[0] + 1 if self.body[1] else 0
        )
        object.__setattr__(self, "upstreams", SERVICES[self.service].upstreams)


def _pods(third: int, count: int) -> tuple[str, ...]:
    return tuple(f"10.244.{third}.{11 + 7 * i}:8080" for i in range(count))


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service("identity", _pods(1, 3)),
        Service("accounts", _pods(2, 3)),
        Service("orders", _pods(3, 4)),
        Service("catalog", _pods(4, 6)),
        Service("search", _pods(5, 4)),
        Service("cart", _pods(6, 3)),
        Service("partner-gateway", _pods(7, 2)),
        Service("web", _pods(8, 2)),
    )
}

LOGIN = Endpoint("POST", "/api/v1/auth/login", "identity", 180, 0.3, (880, 1100), (60, 110))
LOGOUT = Endpoint("POST", "/api/v1/auth/logout", "identity", 14, 0.4, (0, 0))
PASSWORD_RESET = Endpoint(
    "POST", "/api/v1/auth/password/reset", "identity", 120, 0.4, (30, 60), (40, 80)
)
USER = Endpoint("GET", "/api/v1/users/{userId}", "accounts", 18, 0.5, (450, 900))
USER_UPDATE = Endpoint("PUT", "/api/v1/users/{userId}", "accounts", 35, 0.5, (450, 900), (120, 400))
USER_ADDRESSES = Endpoint(
    "GET", "/api/v1/users/{userId}/addresses", "accounts", 20, 0.5, (300, 1400)
)
USER_ORDERS = Endpoint("GET", "/api/v1/users/{userId}/orders", "orders", 45, 0.5, (1200, 9000))
ORDER = Endpoint("GET", "/api/v1/orders/{orderId}", "orders", 25, 0.5, (900, 3000))
ORDER_CREATE = Endpoint("POST", "/api/v1/orders", "orders", 220, 0.4, (700, 1600), (150, 600))
PRODUCT = Endpoint("GET", "/api/v1/products/{productId}", "catalog", 12, 0.6, (1500, 4500))
PRODUCT_LIST = Endpoint("GET", "/api/v1/products", "catalog", 35, 0.5, (8000, 24000))
PRODUCT_REVIEWS = Endpoint(
    "GET", "/api/v1/products/{productId}/reviews", "catalog", 30, 0.5, (600, 12000)
)
SEARCH = Endpoint("GET", "/api/v1/search", "search", 60, 0.6, (900, 30000))
CART = Endpoint("GET", "/api/v1/cart", "cart", 20, 0.5, (300, 2500))
CART_ADD = Endpoint("POST", "/api/v1/cart", "cart", 40, 0.5, (200, 600), (50, 120))
CART_ITEM_UPDATE = Endpoint(
    "PUT", "/api/v1/cart/items/{productId}", "cart", 35, 0.5, (200, 600), (20, 60)
)
CART_ITEM_DELETE = Endpoint("DELETE", "/api/v1/cart/items/{productId}", "cart", 25, 0.5, (0, 0))
PARTNER_INVENTORY = Endpoint(
    "GET", "/api/v1/partners/{partnerId}/inventory", "partner-gateway", 120, 0.4, (40000, 90000)
)
PARTNER_ITEM = Endpoint(
    "GET", "/api/v1/partners/{partnerId}/inventory/{sku}", "partner-gateway", 15, 0.5, (300, 600)
)
PARTNER_ITEM_UPDATE = Endpoint(
    "PUT",
    "/api/v1/partners/{partnerId}/inventory/{sku}",
    "partner-gateway",
    40,
    0.5,
    (200, 400),
    (80, 200),
)
PARTNER_ORDERS = Endpoint(
    "GET", "/api/v1/partners/{partnerId}/orders", "partner-gateway", 80, 0.5, (2000, 40000)
)
PARTNER_SHIPMENT = Endpoint(
    "POST",
    "/api/v1/partners/{partnerId}/shipments",
    "partner-gateway",
    90,
    0.4,
    (300, 700),
    (300, 1500),
)
HEALTHZ = Endpoint("GET", "/healthz", "web", 1.2, 0.4, (15, 15))
ROBOTS = Endpoint("GET", "/robots.txt", "web", 2.0, 0.4, (160, 160))

# Routes only some traffic uses: sign-ups, admin exports (responses of megabytes, by
# design), review photos (request bodies of megabytes, by design), and the routes an
# old app version still calls although the API removed them (the gateway answers 404).
SIGNUP = Endpoint("POST", "/api/v1/auth/register", "identity", 150, 0.4, (350, 600), (120, 300))
ADMIN_EXPORT = Endpoint(
    "GET", "/api/v1/admin/exports/{dataset}", "accounts", 2500, 0.5, (4_000_000, 40_000_000)
)
REVIEW_PHOTO = Endpoint(
    "POST",
    "/api/v1/products/{productId}/reviews/photos",
    "catalog",
    900,
    0.5,
    (200, 400),
    (400_000, 6_000_000),
)
REMOVED: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v1/wishlist", "web", 1.5, 0.4, (0, 0)),
    Endpoint("GET", "/api/v1/app/config", "web", 1.5, 0.4, (0, 0)),
    Endpoint("POST", "/api/v1/analytics/events", "web", 1.5, 0.4, (0, 0), (300, 2500)),
    Endpoint("GET", "/api/v0/products/{productId}", "web", 1.5, 0.4, (0, 0)),
)
"""Routes the API no longer serves; stale clients still call them (404)."""
