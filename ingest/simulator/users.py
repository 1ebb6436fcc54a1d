"""People: accounts, how they reach the API, and their browsing sessions.

A ``SessionSource`` is one population (home broadband users, office workers behind a
corporate NAT, app users on mobile carrier-grade NAT). It starts sessions as a Poisson
process; each ``UserSession`` is an actor that may browse the public catalogue
anonymously, logs in (sometimes mistyping the password first: a 401 followed by a
200 for the same username), browses its own profile and orders, searches, fills a
cart, and maybe logs out. How the population connects (address, software, load
balancer, proxy) is its ``AccessProfile``.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from math import exp
from typing import ClassVar

from ingest.simulator import catalogue, endpoints, network
from ingest.simulator.actor import Actor, Client, Emitter, World
from ingest.simulator.catalogue import PRODUCT_BASE, PRODUCTS
from ingest.simulator.identity import issue_jwt, session_id
from ingest.simulator.request import SimRequest


class Account:
    """A registered user: the login name they type and the id their token carries."""

    __slots__ = (
        "home_ip",
        "order_ids",
        "orders_path",
        "sub",
        "user_agent",
        "user_path",
        "username",
    )

    def __init__(
        self, user_id: int, username: str, home_ip: str, user_agent: str, order_ids: list[int]
    ) -> None:
        self.sub = str(user_id)
        self.username = username
        self.home_ip = home_ip
        self.user_agent = user_agent
        self.order_ids = order_ids
        self.user_path = f"/api/v1/users/{user_id}"
        self.orders_path = f"{self.user_path}/orders"


class AccessProfile(ABC):
    """How one population's people and devices reach the API."""

    actor: ClassVar[str]
    roams: ClassVar[bool] = False
    """Whether ``roam`` may change a client (skipped, per request, when not)."""

    def __init__(self, *, host: str, lb_share: float) -> None:
        self.host = host
        self.lb_share = lb_share

    @abstractmethod
    def new_account(self, rng: random.Random, user_id: int, taken: set[str]) -> Account:
        """A new account; ``taken`` holds the usernames already in use."""

    @abstractmethod
    def connect(self, rng: random.Random, account: Account) -> Client:
        """The client a new session of ``account`` uses."""

    def roam(self, rng: random.Random, client: Client) -> None:  # noqa: B027 - optional hook
        """Called before each request; a mobile client may change address here."""


def _unique(name: str, domain: str, rng: random.Random, taken: set[str]) -> str:
    username = f"{name}@{domain}"
    while username in taken:
        username = f"{name}{rng.randrange(1, 1000)}@{domain}"
    taken.add(username)
    return username


def _orders(rng: random.Random) -> list[int]:
    return [rng.randrange(1_000_000, 10_000_000) for _ in range(1 + int(rng.random() * 6))]


def _tls(rng: random.Random) -> str:
    return "TLSv1.3" if rng.random() < 0.85 else "TLSv1.2"


class HomeBroadband(AccessProfile):
    """Browsers at home: one address each, a few on IPv6; session cookie and referer."""

    actor = "web-user"

    def __init__(self, *, host: str, lb_share: float, ipv6_share: float) -> None:
        super().__init__(host=host, lb_share=lb_share)
        self.ipv6_share = ipv6_share

    def new_account(self, rng: random.Random, user_id: int, taken: set[str]) -> Account:
        name = f"{rng.choice(catalogue.FIRST_NAMES)}.{rng.choice(catalogue.LAST_NAMES)}"
        username = _unique(name, rng.choice(catalogue.CONSUMER_MAIL_DOMAINS), rng, taken)
        if rng.random() < self.ipv6_share:
            address = network.residential_ipv6(rng)
        else:
            address = network.residential_ipv4(rng)
        agent = rng.choice(catalogue.BROWSER_AGENTS)
        return Account(user_id, username, address, agent, _orders(rng))

    def connect(self, rng: random.Random, account: Account) -> Client:
        client = Client(
            account.home_ip,
            network.ephemeral_port(rng),
            account.user_agent,
            host=self.host,
            protocol="HTTP/2.0" if rng.random() < 0.75 else "HTTP/1.1",
            tls_version=_tls(rng),
            via_lb=rng.random() < self.lb_share,
            referers=catalogue.WEB_REFERERS,
        )
        client.set_header("cookie", f"sid={session_id(rng)}; consent=1")
        return client


class CorporateNat(AccessProfile):
    """Office workers: hundreds of people behind each site's single egress address.

    Sites with an explicit web proxy also send the workstation's internal address in
    X-Forwarded-For, which the walk from the nearest trusted hop must not believe.
    """

    actor = "corporate-user"
    _DOMAINS: ClassVar[tuple[str, ...]] = (
        "globex.example",
        "initech.example",
        "umbrella.example",
        "hooli.example",
    )

    def __init__(self, *, host: str, lb_share: float, sites: int, rng: random.Random) -> None:
        super().__init__(host=host, lb_share=lb_share)
        self.egress = [network.corporate_egress(rng, site) for site in range(sites)]
        self.proxied = [site % 2 == 1 for site in range(sites)]

    def new_account(self, rng: random.Random, user_id: int, taken: set[str]) -> Account:
        site = user_id % len(self.egress)
        first, last = rng.choice(catalogue.FIRST_NAMES), rng.choice(catalogue.LAST_NAMES)
        domain = self._DOMAINS[site % len(self._DOMAINS)]
        username = _unique(f"{first[0]}{last}", domain, rng, taken)
        agent = rng.choice(catalogue.CORPORATE_AGENTS)
        return Account(user_id, username, self.egress[site], agent, _orders(rng))

    def connect(self, rng: random.Random, account: Account) -> Client:
        site = int(account.sub) % len(self.egress)
        client = Client(
            account.home_ip,
            network.ephemeral_port(rng),
            account.user_agent,
            host=self.host,
            protocol="HTTP/2.0",
            via_lb=rng.random() < self.lb_share,
            forwarded_for=network.corporate_internal(rng) if self.proxied[site] else "",
            referers=catalogue.WEB_REFERERS,
        )
        client.set_header("cookie", f"sid={session_id(rng)}; consent=1")
        return client


class MobileCgnat(AccessProfile):
    """The shop's mobile app on carrier networks: addresses from 100.64.0.0/10, shared
    between subscribers and changing mid-session as the carrier re-maps the phone."""

    actor = "mobile-user"
    roams = True

    def __init__(self, *, host: str, lb_share: float, roam_rate: float) -> None:
        super().__init__(host=host, lb_share=lb_share)
        self.roam_rate = roam_rate

    def new_account(self, rng: random.Random, user_id: int, taken: set[str]) -> Account:
        name = f"{rng.choice(catalogue.FIRST_NAMES)}{rng.choice(catalogue.LAST_NAMES)}"
        username = _unique(name, rng.choice(catalogue.CONSUMER_MAIL_DOMAINS), rng, taken)
        agent = rng.choice(catalogue.MOBILE_APP_AGENTS)
        return Account(user_id, username, "", agent, _orders(rng))

    def connect(self, rng: random.Random, account: Account) -> Client:
        return Client(
            network.cgnat_ipv4(rng),
            network.ephemeral_port(rng),
            account.user_agent,
            host=self.host,
            protocol="HTTP/2.0",
            tls_version="TLSv1.3",
            via_lb=rng.random() < self.lb_share,
        )

    def roam(self, rng: random.Random, client: Client) -> None:
        if rng.random() < self.roam_rate:
            client.ip = network.cgnat_ipv4(rng)
            client.port = network.ephemeral_port(rng)


class SessionSource(Actor):
    """One population: starts its users' sessions as a Poisson process.

    At its first step it also starts the sessions already under way when the
    simulation begins (about ``session_rate`` times the mean session length of them,
    already logged in), so a short run is as busy as a long one.
    """

    __slots__ = (
        "_taken",
        "_warm",
        "accounts",
        "emitter",
        "first_id",
        "mean_requests",
        "profile",
        "rng",
        "session_rate",
        "typo_rate",
        "users",
    )

    def __init__(
        self,
        profile: AccessProfile,
        rng: random.Random,
        *,
        start_ts: float,
        users: int,
        first_id: int,
        session_rate: float,
        typo_rate: float,
        mean_requests: float = 20.0,
        server_error_rate: float = 0.003,
    ) -> None:
        super().__init__(start_ts)
        self.profile = profile
        self.rng = rng
        self.users = users
        self.first_id = first_id
        self.session_rate = session_rate
        self.typo_rate = typo_rate
        self.mean_requests = mean_requests
        self.emitter = Emitter(rng, profile.actor, server_error_rate=server_error_rate)
        self.accounts: dict[int, Account] = {}
        self._taken: set[str] = set()
        self._warm = True

    def account(self, index: int) -> Account:
        """The ``index``-th account, created the first time it is needed."""
        account = self.accounts.get(index)
        if account is None:
            account = self.profile.new_account(self.rng, self.first_id + index, self._taken)
            self.accounts[index] = account
        return account

    def session_length(self) -> int:
        return min(1 + int(self.rng.expovariate(1.0 / self.mean_requests)), 200)

    def step(self, now: float, world: World) -> SimRequest | None:
        rng = self.rng
        if self._warm:
            self._warm = False
            mean_session_s = self.mean_requests * MEAN_THINK_S
            for _ in range(round(self.session_rate * mean_session_s)):
                self._start(world, now + rng.random() * 2 * MEAN_THINK_S, logged_in=True)
        else:
            self._start(world, now, logged_in=False)
        self.next_ts = now + rng.expovariate(self.session_rate)
        return None

    def _start(self, world: World, at: float, *, logged_in: bool) -> None:
        account = self.account(int(self.rng.random() * self.users))
        client = self.profile.connect(self.rng, account)
        world.spawn(UserSession(self, account, client, at, logged_in=logged_in))


def think_time(rng: random.Random) -> float:
    """Seconds until a user's next request: often a quick follow-up fetch, else reading."""
    if rng.random() < 0.25:
        return 0.03 + rng.random() * 0.4
    return exp(1.0 + 0.9 * rng.gauss())  # log-normal, cheaper than lognormvariate


MEAN_THINK_S = 0.25 * 0.23 + 0.75 * math.exp(1.0 + 0.9**2 / 2)

_ANONYMOUS, _LOGIN, _BROWSE, _LOGOUT, _RESET = range(5)


class UserSession(Actor):
    """One visit by one user; a small state machine over simulated time."""

    __slots__ = ("_account", "_anonymous", "_client", "_failures", "_left", "_source", "_state")

    def __init__(
        self,
        source: SessionSource,
        account: Account,
        client: Client,
        start_ts: float,
        *,
        logged_in: bool,
    ) -> None:
        super().__init__(start_ts)
        self._source = source
        self._account = account
        self._client = client
        self._failures = 0
        self._left = source.session_length()
        rng = source.rng
        self._anonymous = 0
        if logged_in:
            issued = int(start_ts - rng.random() * 600)
            client.set_header("authorization", f"Bearer {issue_jwt(rng, account.sub, issued)}")
            self._state = _BROWSE
        elif rng.random() < 0.3:
            self._anonymous = 1 + int(rng.random() * 4)
            self._state = _ANONYMOUS
        else:
            self._state = _LOGIN

    def step(self, now: float, world: World) -> SimRequest | None:
        source = self._source
        rng = source.rng
        if source.profile.roams:
            source.profile.roam(rng, self._client)
        state = self._state
        if state == _BROWSE:
            action = _ACTIONS[bisect.bisect(_ACTION_CUMULATIVE, rng.random() * _ACTION_TOTAL)]
            request = action(self, now, self._account.sub)
            self._left -= 1
            if self._left > 0 or rng.random() < 0.5:
                self._state = _BROWSE if self._left > 0 else _LOGOUT
                self.next_ts = now + think_time(rng)
            else:  # the user just leaves, still logged in
                self.next_ts = None
            return request
        if state == _ANONYMOUS:
            action = _PUBLIC[int(rng.random() * len(_PUBLIC))]
            self._anonymous -= 1
            if self._anonymous <= 0:
                self._state = _LOGIN
            self.next_ts = now + think_time(rng)
            return action(self, now, "")
        if state == _LOGIN:
            return self._login(now)
        self.next_ts = None
        if state == _LOGOUT:
            request = self._ask(now, endpoints.LOGOUT, endpoints.LOGOUT.route, 204)
            self._client.set_header("authorization", None)
            return request
        reset = endpoints.PASSWORD_RESET
        return self._ask(now, reset, reset.route, 202, user=self._account.username)

    def _ask(
        self,
        now: float,
        endpoint: endpoints.Endpoint,
        path: str,
        status: int,
        *,
        query: str = "",
        user: str | None = None,
    ) -> SimRequest:
        """The request for ``endpoint`` at ``now``, as the session's user by default."""
        return self._source.emitter.emit(
            now,
            endpoint,
            self._client,
            path,
            status,
            query=query,
            user=self._account.sub if user is None else user,
        )

    def _login(self, now: float) -> SimRequest:
        source = self._source
        rng = source.rng
        typo_chance = source.typo_rate if self._failures == 0 else 0.25
        mistyped = self._failures < 4 and rng.random() < typo_chance
        account = self._account
        login = endpoints.LOGIN
        request = self._ask(
            now, login, login.route, 401 if mistyped else 200, user=account.username
        )
        if request.status == 200:
            jwt = issue_jwt(rng, account.sub, int(now))
            self._client.set_header("authorization", f"Bearer {jwt}")
            self._state = _BROWSE
            self.next_ts = now + 0.2 + rng.random() * 1.5
        elif request.status == 401:
            self._failures += 1
            if self._failures >= 2 and rng.random() < 0.3:
                self._state = _RESET
            self.next_ts = now + 2.0 + exp(1.5 + 0.5 * rng.gauss())  # retyping it
        else:  # the server failed: try again shortly
            self.next_ts = now + 1.0 + rng.random() * 4.0
        return request

    # Browsing actions: each makes its request at ``now`` as ``user`` ("" when anonymous).

    def _product(self, now: float, user: str) -> SimRequest:
        rand = self._source.rng.random
        path = f"/api/v1/products/{PRODUCT_BASE + int(PRODUCTS * rand() ** 3)}"
        status = 404 if rand() < 0.015 else 200  # delisted products linger in old links
        return self._ask(now, endpoints.PRODUCT, path, status, user=user)

    def _reviews(self, now: float, user: str) -> SimRequest:
        rand = self._source.rng.random
        path = f"/api/v1/products/{PRODUCT_BASE + int(PRODUCTS * rand() ** 3)}/reviews"
        query = f"page={1 + int(rand() * rand() * 5)}"
        return self._ask(now, endpoints.PRODUCT_REVIEWS, path, 200, query=query, user=user)

    def _search(self, now: float, user: str) -> SimRequest:
        rand = self._source.rng.random
        query = catalogue.SEARCH_QUERIES[int(rand() * len(catalogue.SEARCH_QUERIES))]
        draw = rand()
        if draw < 0.15:
            query = f"{query}&page={2 + int(rand() * 3)}"
        elif draw < 0.25:
            query = f"{query}&sort={catalogue.SORTS[int(rand() * len(catalogue.SORTS))]}"
        search = endpoints.SEARCH
        return self._ask(now, search, search.route, 200, query=query, user=user)

    def _listing(self, now: float, user: str) -> SimRequest:
        rng = self._source.rng
        category = catalogue.CATEGORIES[int(rng.random() * len(catalogue.CATEGORIES))]
        query = f"category={category}&page={1 + int(rng.expovariate(0.6))}"
        listing = endpoints.PRODUCT_LIST
        return self._ask(now, listing, listing.route, 200, query=query, user=user)

    def _profile(self, now: float, user: str) -> SimRequest:
        return self._ask(now, endpoints.USER, self._account.user_path, 200)

    def _profile_update(self, now: float, user: str) -> SimRequest:
        return self._ask(now, endpoints.USER_UPDATE, self._account.user_path, 200)

    def _addresses(self, now: float, user: str) -> SimRequest:
        path = f"{self._account.user_path}/addresses"
        return self._ask(now, endpoints.USER_ADDRESSES, path, 200)

    def _orders(self, now: float, user: str) -> SimRequest:
        query = "page=1&page_size=20" if self._source.rng.random() < 0.3 else ""
        return self._ask(now, endpoints.USER_ORDERS, self._account.orders_path, 200, query=query)

    def _order(self, now: float, user: str) -> SimRequest:
        rand = self._source.rng.random
        orders = self._account.order_ids
        order = orders[int(rand() * len(orders))]
        status = 404 if rand() < 0.01 else 200  # an archived order
        return self._ask(now, endpoints.ORDER, f"/api/v1/orders/{order}", status)

    def _checkout(self, now: float, user: str) -> SimRequest:
        request = self._ask(now, endpoints.ORDER_CREATE, endpoints.ORDER_CREATE.route, 201)
        if request.status == 201:
            orders = self._account.order_ids
            orders.append(self._source.rng.randrange(1_000_000, 10_000_000))
            del orders[:-12]
        return request

    def _cart(self, now: float, user: str) -> SimRequest:
        return self._ask(now, endpoints.CART, endpoints.CART.route, 200)

    def _cart_add(self, now: float, user: str) -> SimRequest:
        status = 400 if self._source.rng.random() < 0.01 else 201  # out of stock
        return self._ask(now, endpoints.CART_ADD, endpoints.CART_ADD.route, status)

    def _cart_item(self, endpoint: endpoints.Endpoint, now: float, status: int) -> SimRequest:
        product = PRODUCT_BASE + int(PRODUCTS * self._source.rng.random() ** 3)
        return self._ask(now, endpoint, f"/api/v1/cart/items/{product}", status)

    def _cart_update(self, now: float, user: str) -> SimRequest:
        return self._cart_item(endpoints.CART_ITEM_UPDATE, now, 200)

    def _cart_delete(self, now: float, user: str) -> SimRequest:
        return self._cart_item(endpoints.CART_ITEM_DELETE, now, 204)


_Action = Callable[[UserSession, float, str], SimRequest]
_WEIGHTED: tuple[tuple[float, _Action], ...] = (
    (30.0, UserSession._product),
    (14.0, UserSession._search),
    (8.0, UserSession._listing),
    (4.0, UserSession._reviews),
    (5.0, UserSession._profile),
    (0.8, UserSession._profile_update),
    (2.0, UserSession._addresses),
    (6.0, UserSession._orders),
    (8.0, UserSession._order),
    (1.5, UserSession._checkout),
    (6.0, UserSession._cart),
    (8.0, UserSession._cart_add),
    (3.0, UserSession._cart_update),
    (2.0, UserSession._cart_delete),
)
_ACTIONS: tuple[_Action, ...] = tuple(action for _, action in _WEIGHTED)
_ACTION_CUMULATIVE: tuple[float, ...] = tuple(itertools.accumulate(w for w, _ in _WEIGHTED))[:-1]
_ACTION_TOTAL: float = sum(w for w, _ in _WEIGHTED)
_PUBLIC: tuple[_Action, ...] = (
    UserSession._product,
    UserSession._product,
    UserSession._search,
    UserSession._listing,
)
