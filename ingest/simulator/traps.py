"""Benign traps: legitimate traffic that looks like an attack to a naive detector.

``build_actors`` (``ingest.simulator.traffic``) already includes several:

* **corporate NAT** (``users.CorporateNat``): hundreds of office workers behind each
  site's one egress address, some mistyping their password (401 then 200);
* **mobile CGNAT** (``users.MobileCgnat``): app users sharing 100.64.0.0/10 addresses
  that change mid-session;
* **partner integrations** (``automated.PartnerIntegration``): API keys at high steady
  rates from a few cloud addresses, paging through whole inventories;
* **health probes** and **crawlers** (``automated``): one path every ten seconds
  forever; thousands of product ids walked in order, with dead-link 404s.

This module adds, when asked (``build_traps``; ``gatewatch simulate --traps``, on by
default with ``--attacks``), the ones the API surface of the base simulation has no
room for. Each draws from its own ``random.Random`` (seeded from the run's seed and
its name), so traps do not change the rest of the traffic, and are never labelled.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import NamedTuple

from ingest.simulator import catalogue, endpoints, network
from ingest.simulator.actor import Actor, Client, Emitter, World
from ingest.simulator.catalogue import PRODUCT_BASE, PRODUCTS
from ingest.simulator.endpoints import Endpoint
from ingest.simulator.identity import issue_jwt, session_id
from ingest.simulator.request import SimRequest
from ingest.simulator.traffic import SimulationConfig

ADMIN_IDS: tuple[int, ...] = (900_001, 900_002)
"""User ids of the shop's administrators (they run exports)."""

STALE_APP_AGENTS: tuple[str, ...] = (
    "ShopApp/4.9.2 (Android 9; SM-G960F; okhttp/3.12.1)",
    "ShopApp/4.9.2 (iPhone; iOS 14.8; Scale/2.00)",
    "ShopApp/4.7.0 (Android 8.1.0; Redmi 5 Plus; okhttp/3.10.0)",
)
PRICE_BOT_AGENT = "PriceCompareBot/2.1 (+https://compare.example/bot)"


class Step(NamedTuple):
    """One request of a scripted visit: when, to what, and the answer it gets."""

    at: float
    endpoint: Endpoint
    path: str
    status: int
    query: str = ""
    user: str = ""


class Visit(Actor):
    """A scripted benign visit: ``steps`` made in order by one client."""

    __slots__ = ("_i", "client", "emitter", "steps")

    def __init__(self, emitter: Emitter, client: Client, steps: list[Step]) -> None:
        super().__init__(steps[0].at if steps else None)
        self.emitter = emitter
        self.client = client
        self.steps = steps
        self._i = 0

    def step(self, now: float, world: World) -> SimRequest | None:
        step = self.steps[self._i]
        self._i += 1
        self.next_ts = self.steps[self._i].at if self._i < len(self.steps) else None
        return self.emitter.emit(
            now,
            step.endpoint,
            self.client,
            step.path,
            step.status,
            query=step.query,
            user=step.user,
        )


class VisitSource(Actor):
    """Starts ``plan(now)`` visits as a Poisson process of ``rate`` per second."""

    __slots__ = ("plan", "rate", "rng")

    def __init__(
        self,
        rng: random.Random,
        *,
        start_ts: float,
        rate: float,
        plan: Callable[[float], Visit],
    ) -> None:
        super().__init__(start_ts + rng.expovariate(rate))
        self.rng = rng
        self.rate = rate
        self.plan = plan

    def step(self, now: float, world: World) -> SimRequest | None:
        world.spawn(self.plan(now))
        self.next_ts = now + self.rng.expovariate(self.rate)
        return None


def _after(rng: random.Random, now: float, low: float, high: float) -> float:
    return now + low + rng.random() * (high - low)


def _product_path(rng: random.Random) -> str:
    return f"/api/v1/products/{PRODUCT_BASE + int(PRODUCTS * rng.random() ** 3)}"


def stale_apps(config: SimulationConfig, rng: random.Random) -> list[Actor]:
    """Stale app versions calling removed routes.

    Phones still running ShopApp 4.x call, at every launch, routes the API removed
    (``/api/v1/wishlist``, ``/api/v1/app/config``, ``/api/v1/analytics/events``,
    ``/api/v0/products/{id}``): 404s, the same few paths again and again, from many
    CGNAT and home addresses; then the user browses normally. An in-store kiosk on the
    old version polls ``/api/v1/app/config`` every 30 s from one address, a 404 each
    time, all day. Looks like endpoint scanning to a detector that counts 404s
    rather than distinct never-existing paths.
    """
    emitter = Emitter(rng, "stale-app", server_error_rate=config.server_error_rate)
    removed = endpoints.REMOVED

    def launch(now: float) -> Visit:
        ip = network.cgnat_ipv4(rng) if rng.random() < 0.7 else network.residential_ipv4(rng)
        client = Client(
            ip,
            network.ephemeral_port(rng),
            rng.choice(STALE_APP_AGENTS),
            host=config.host,
            via_lb=rng.random() < config.lb_share,
        )
        steps: list[Step] = []
        t = now
        for endpoint in removed[:3]:
            if rng.random() < 0.8:
                steps.append(Step(t, endpoint, endpoint.route, 404))
                t = _after(rng, t, 0.05, 0.4)
        for _ in range(1 + int(rng.random() * 3)):
            old = removed[3]
            item = PRODUCT_BASE + int(PRODUCTS * rng.random() ** 3)
            steps.append(Step(t, old, f"/api/v0/products/{item}", 404))
            t = _after(rng, t, 1.0, 6.0)
            steps.append(Step(t, endpoints.PRODUCT, f"/api/v1/products/{item}", 200))
            t = _after(rng, t, 2.0, 20.0)
        return Visit(emitter, client, steps)

    kiosk_client = Client(
        network.corporate_egress(rng, 3),
        network.ephemeral_port(rng),
        STALE_APP_AGENTS[2],
        host=config.host,
    )
    config_route = removed[1]
    first = config.start_ts + rng.random() * 30.0
    end = config.end_ts if config.end_ts is not None else first + 86_400.0
    polls = [
        Step(first + 30.0 * n + rng.random() * 0.5, config_route, config_route.route, 404)
        for n in range(int((end - first) / 30.0) + 1)
    ]
    kiosk = Visit(emitter, kiosk_client, polls)
    return [VisitSource(rng, start_ts=config.start_ts, rate=0.08, plan=launch), kiosk]


class _AdminDesk(Actor):
    """One administrator running exports now and then (see ``admin_exports``)."""

    __slots__ = ("client", "emitter", "pending", "rng", "sub")

    def __init__(
        self, rng: random.Random, emitter: Emitter, client: Client, sub: str, start: float
    ) -> None:
        super().__init__(start)
        self.rng = rng
        self.emitter = emitter
        self.client = client
        self.sub = sub
        self.pending: list[tuple[int, str, str]] = []

    def step(self, now: float, world: World) -> SimRequest | None:
        rng = self.rng
        if not self.pending:
            dataset = rng.choice(("orders", "customers", "inventory", "payments"))
            day = rng.randrange(1, 28)
            query = f"from=2024-02-{day:02d}&to=2024-03-{day:02d}&format=csv"
            pages = 1 + int(rng.random() * 4)
            self.pending = [(page, dataset, query) for page in range(pages, 0, -1)]
            self.client.set_header(
                "authorization", f"Bearer {issue_jwt(rng, self.sub, int(now) - 600)}"
            )
        page, dataset, query = self.pending.pop()
        request = self.emitter.emit(
            now,
            endpoints.ADMIN_EXPORT,
            self.client,
            f"/api/v1/admin/exports/{dataset}",
            200,
            query=f"{query}&page={page}",
            user=self.sub,
        )
        if self.pending:  # the next page once this one has downloaded
            self.next_ts = now + request.latency_ms / 1000.0 + 0.5 + rng.random() * 3.0
        else:
            self.next_ts = now + 300.0 + rng.expovariate(1.0 / 900.0)
        return request


def admin_exports(config: SimulationConfig, rng: random.Random) -> list[Actor]:
    """Admins running large exports.

    Two administrators, from the office's egress address with a bearer token, export
    orders, customers, inventory or payments every 5-20 minutes: one to four pages of
    4-40 MB each, fetched one after the other. Responses hundreds of times the API's
    usual, legitimately: a trap for exfiltration detection by size alone.
    """
    emitter = Emitter(rng, "admin", server_error_rate=config.server_error_rate)
    office = network.corporate_egress(rng, 2)
    desks: list[Actor] = []
    for sub in ADMIN_IDS:
        client = Client(
            office,
            network.ephemeral_port(rng),
            rng.choice(catalogue.CORPORATE_AGENTS),
            host=config.host,
            protocol="HTTP/2.0",
            via_lb=rng.random() < config.lb_share,
            referers=("https://admin.shop.example.com/exports",),
        )
        client.set_header("cookie", f"admin_sid={session_id(rng)}")
        start = config.start_ts + 30.0 + rng.random() * 240.0
        desks.append(_AdminDesk(rng, emitter, client, str(sub), start))
    return desks


def catalogue_browsing(config: SimulationConfig, rng: random.Random) -> list[Actor]:
    """Public catalogue browsing of many product ids.

    Deal hunters open 100-300 products of a category in listing order (ids ascending
    with small gaps) in one anonymous visit, a few seconds apart, a few 404s on
    delisted items; a price-comparison service walks product ids one by one at about
    two a second, all day, from two cloud addresses. Many distinct object ids, some
    consecutive, from one client: what BOLA and scraping look like on a route where
    reading any id is allowed.
    """
    emitter = Emitter(rng, "catalogue-browser", server_error_rate=config.server_error_rate)

    def hunt(now: float) -> Visit:
        ip = network.residential_ipv4(rng) if rng.random() < 0.7 else network.cgnat_ipv4(rng)
        client = Client(
            ip,
            network.ephemeral_port(rng),
            rng.choice(catalogue.BROWSER_AGENTS),
            host=config.host,
            protocol="HTTP/2.0",
            via_lb=rng.random() < config.lb_share,
            referers=catalogue.WEB_REFERERS,
        )
        client.set_header("cookie", f"sid={session_id(rng)}; consent=1")
        category = rng.choice(catalogue.CATEGORIES)
        listing = endpoints.PRODUCT_LIST
        steps = [Step(now, listing, listing.route, 200, f"category={category}&page=1")]
        t = now
        item = PRODUCT_BASE + int(rng.random() * (PRODUCTS - 2500))
        for n in range(rng.randrange(100, 300)):
            t = _after(rng, t, 1.0, 5.0)
            item += 1 + int(rng.random() * 8)
            if n % 24 == 23:
                query = f"category={category}&page={2 + n // 24}"
                steps.append(Step(t, listing, listing.route, 200, query))
                t = _after(rng, t, 0.5, 2.0)
            status = 404 if rng.random() < 0.02 else 200
            steps.append(Step(t, endpoints.PRODUCT, f"/api/v1/products/{item}", status))
        return Visit(emitter, client, steps)

    bot_clients = [
        Client(
            network.cloud_ipv4(rng),
            network.ephemeral_port(rng),
            PRICE_BOT_AGENT,
            host=config.host,
            via_lb=rng.random() < config.lb_share,
        )
        for _ in range(2)
    ]
    return [
        VisitSource(rng, start_ts=config.start_ts, rate=0.01, plan=hunt),
        _PriceBot(rng, emitter, bot_clients, config.start_ts),
    ]


class _PriceBot(Actor):
    """The price-comparison service of ``catalogue_browsing``."""

    __slots__ = ("_cursor", "clients", "emitter", "rng")

    def __init__(
        self, rng: random.Random, emitter: Emitter, clients: list[Client], start: float
    ) -> None:
        super().__init__(start + rng.random())
        self.rng = rng
        self.emitter = emitter
        self.clients = clients
        self._cursor = int(rng.random() * PRODUCTS)

    def step(self, now: float, world: World) -> SimRequest | None:
        rand = self.rng.random
        self._cursor = (self._cursor + 1) % PRODUCTS
        client = self.clients[self._cursor % len(self.clients)]
        path = f"/api/v1/products/{PRODUCT_BASE + self._cursor}"
        self.next_ts = now + 0.4 + rand() * 0.2
        status = 404 if rand() < 0.03 else 200
        return self.emitter.emit(now, endpoints.PRODUCT, client, path, status)


def signups(config: SimulationConfig, rng: random.Random) -> list[Actor]:
    """New customers registering.

    About one sign-up every 30 s from home and mobile addresses: mostly 201, but one in
    ten already had an account (409) and most of those then reset their password (202).
    The sign-up route therefore answers 201 and 409 to ordinary people: the differing
    answers user enumeration relies on, one username per person.
    """
    emitter = Emitter(rng, "signup", server_error_rate=config.server_error_rate)

    def register(now: float) -> Visit:
        mobile = rng.random() < 0.5
        agent = rng.choice(catalogue.MOBILE_APP_AGENTS if mobile else catalogue.BROWSER_AGENTS)
        ip = network.cgnat_ipv4(rng) if mobile else network.residential_ipv4(rng)
        client = Client(
            ip,
            network.ephemeral_port(rng),
            agent,
            host=config.host,
            protocol="HTTP/2.0",
            via_lb=rng.random() < config.lb_share,
        )
        first, last = rng.choice(catalogue.FIRST_NAMES), rng.choice(catalogue.LAST_NAMES)
        username = (
            f"{first}.{last}{rng.randrange(1, 100)}@{rng.choice(catalogue.CONSUMER_MAIL_DOMAINS)}"
        )
        signup, reset = endpoints.SIGNUP, endpoints.PASSWORD_RESET
        if rng.random() < 0.1:
            steps = [Step(now, signup, signup.route, 409, user=username)]
            if rng.random() < 0.7:
                steps.append(
                    Step(_after(rng, now, 5.0, 40.0), reset, reset.route, 202, user=username)
                )
        else:
            steps = [Step(now, signup, signup.route, 201, user=username)]
        return Visit(emitter, client, steps)

    return [VisitSource(rng, start_ts=config.start_ts, rate=1 / 30, plan=register)]


def media_uploads(config: SimulationConfig, rng: random.Random) -> list[Actor]:
    """Customers attaching photos to reviews.

    ``POST /api/v1/products/{id}/reviews/photos`` with bodies of 0.4-6 MB, about one a
    minute, answered 201: a route whose normal requests are megabytes, so a request
    body's size means something only against its own route.
    """
    emitter = Emitter(rng, "uploader", server_error_rate=config.server_error_rate)

    def upload(now: float) -> Visit:
        sub = str(200_000 + rng.randrange(20_000))
        client = Client(
            network.residential_ipv4(rng) if rng.random() < 0.6 else network.cgnat_ipv4(rng),
            network.ephemeral_port(rng),
            rng.choice(catalogue.BROWSER_AGENTS),
            host=config.host,
            protocol="HTTP/2.0",
            via_lb=rng.random() < config.lb_share,
        )
        client.set_header("authorization", f"Bearer {issue_jwt(rng, sub, int(now) - 300)}")
        photo = endpoints.REVIEW_PHOTO
        path = f"{_product_path(rng)}/reviews/photos"
        steps = [Step(now, photo, path, 201, user=sub)]
        if rng.random() < 0.3:  # a second photo
            steps.append(Step(_after(rng, now, 5.0, 30.0), photo, path, 201, user=sub))
        return Visit(emitter, client, steps)

    return [VisitSource(rng, start_ts=config.start_ts, rate=1 / 60, plan=upload)]


TrapFactory = Callable[[SimulationConfig, random.Random], list[Actor]]

TRAPS: dict[str, TrapFactory] = {
    "stale_apps": stale_apps,
    "admin_exports": admin_exports,
    "catalogue_browsing": catalogue_browsing,
    "signups": signups,
    "media_uploads": media_uploads,
}
"""Every benign trap this module adds, by name."""


def build_traps(config: SimulationConfig, names: tuple[str, ...] | None = None) -> list[Actor]:
    """The actors of the traps ``names`` (default: all), each trap with its own RNG.

    >>> config = SimulationConfig(seed=1, duration_s=60.0)
    >>> len(build_traps(config)) >= len(TRAPS)
    True
    """
    actors: list[Actor] = []
    for name in TRAPS if names is None else names:
        rng = random.Random(f"{config.seed}/trap/{name}")  # noqa: S311 - simulation
        actors.extend(TRAPS[name](config, rng))
    return actors
