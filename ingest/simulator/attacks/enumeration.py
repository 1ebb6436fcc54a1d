"""Discovery and object-level attacks: endpoint scanning (which paths exist), user
enumeration (which accounts exist) and BOLA (whose objects a token can read).
"""

from __future__ import annotations

from ingest.simulator import catalogue, endpoints, network
from ingest.simulator.attacks.base import (
    SCANNER_AGENTS,
    TOOL_AGENTS,
    AttackEpisode,
    EpisodeContext,
    Move,
    distinct_usernames,
    hosting_ipv4,
    web_user_id,
)
from ingest.simulator.endpoints import Endpoint
from ingest.simulator.identity import issue_jwt

# A short scanner wordlist of our own: config and VCS leaks, admin consoles, CMS paths,
# framework debug endpoints, backups and API documentation.
WORDLIST: tuple[str, ...] = (
    "/.env", "/.env.local", "/.env.production", "/.git/config", "/.git/HEAD",
    "/.svn/entries", "/.DS_Store", "/.htaccess", "/.htpasswd", "/.aws/credentials",
    "/.ssh/id_rsa", "/.npmrc", "/.dockerenv", "/docker-compose.yml", "/Dockerfile",
    "/package.json", "/composer.json", "/.gitlab-ci.yml", "/wp-admin/", "/wp-login.php",
    "/wp-content/plugins/", "/xmlrpc.php", "/phpmyadmin/", "/pma/", "/admin/",
    "/admin.php", "/administrator/", "/login", "/console", "/manager/html",
    "/server-status", "/server-info", "/actuator", "/actuator/env", "/actuator/heapdump",
    "/debug/pprof/", "/metrics", "/config.json", "/config.php", "/config.yml",
    "/backup.zip", "/backup.sql", "/db.sql", "/dump.sql", "/site.tar.gz", "/index.php",
    "/info.php", "/phpinfo.php", "/test.php", "/shell.php", "/cgi-bin/",
    "/cgi-bin/test.cgi", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/solr/",
    "/jenkins/", "/graphql", "/graphiql", "/swagger.json", "/swagger-ui.html",
    "/openapi.json", "/v2/api-docs", "/v3/api-docs", "/api-docs", "/docs", "/redoc",
    "/.well-known/security.txt", "/sitemap.xml", "/crossdomain.xml", "/web.config",
    "/WEB-INF/web.xml", "/robots.txt", "/healthz", "/api/v1/products", "/api/v1/orders",
)  # fmt: skip

# Words an API fuzzer tries under the API's prefix.
API_WORDS: tuple[str, ...] = (
    "admin", "admin/users", "debug", "internal", "config", "users", "accounts", "tokens",
    "keys", "export", "exports", "test", "dev", "staging", "backup", "logs", "settings",
    "upload", "files", "reports", "payments", "invoices", "swagger.json", "openapi.json",
    "health", "status", "metrics", "graphql", "v2", "private", "system", "env", "auth",
    "auth/token", "auth/register", "auth/admin", "partners", "cart", "orders", "products",
    "search", "webhooks", "jobs", "queue", "cache", "sessions", "roles", "permissions",
)  # fmt: skip

_UNMATCHED = {
    method: Endpoint(method, "$default", "web", 1.2, 0.4, (0, 0))
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")
}
"""No route matches: the gateway answers itself."""
_WRONG_METHOD = {
    path: Endpoint("GET", path, service, 1.2, 0.4, (0, 0))
    for path, service in (
        ("/api/v1/orders", "orders"),
        ("/api/v1/auth/register", "identity"),
        ("/api/v1/auth/login", "identity"),
    )
}
"""Routes that exist for POST only: a GET is answered 405."""
_FORBIDDEN = frozenset(("/server-status", "/server-info", "/.htaccess", "/.htpasswd"))


def _answer(path: str) -> tuple[Endpoint, int]:
    """How the shop's gateway answers ``GET path`` from a stranger.

    >>> [_answer(p)[1] for p in ("/.env", "/robots.txt", "/api/v1/orders", "/api/v1/cart")]
    [404, 200, 405, 401]
    """
    if path == "/robots.txt":
        return endpoints.ROBOTS, 200
    if path == "/healthz":
        return endpoints.HEALTHZ, 200
    if path == "/api/v1/products":
        return endpoints.PRODUCT_LIST, 200
    if path == "/api/v1/search":
        return endpoints.SEARCH, 400  # no query
    if path == "/api/v1/cart":
        return endpoints.CART, 401  # needs a login
    if path in _WRONG_METHOD:
        return _WRONG_METHOD[path], 405
    if path in _FORBIDDEN:
        return _UNMATCHED["GET"], 403
    return _UNMATCHED["GET"], 404


class EndpointScanning(AttackEpisode):
    """Forced browsing from one rented server at 5-25 requests per second: ``wordlist``
    walks a scanner wordlist (``/.env``, ``/.git/config``, ``/wp-admin/``, backups,
    consoles), trying backup suffixes on some; ``api`` fuzzes words under ``/api/v1/``.
    Nearly every answer is 404, a few 403, 405, 401 or 200 where something exists."""

    kind = "endpoint_scanning"
    accepted_kinds = ("endpoint_scanning",)
    variants = ("wordlist", "api")
    lane = "surface"
    nominal_s = 120.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        if self.variant == "api":
            agent = rng.choice(("Fuzz Faster U Fool v2.1.0-dev", *TOOL_AGENTS[:3]))
            prefix = rng.choice(("/api/v1/", "/api/v1/", "/api/", "/api/v2/"))
            paths = [f"{prefix}{word}" for word in API_WORDS]
        else:
            agent = rng.choice(SCANNER_AGENTS)
            paths = []
            for path in WORDLIST:
                paths.append(path)
                if not path.endswith("/") and rng.random() < 0.25:
                    paths.append(path + rng.choice((".bak", ".old", "~", ".swp")))
        rng.shuffle(paths)
        paths = paths[: max(40, int(len(paths) * (0.7 + 0.3 * rng.random())))]
        client = self.client(hosting_ipv4(rng), agent)
        rate = 5.0 + 20.0 * rng.random()
        span = min(context.duration_s, len(paths) / rate)
        times = self.paced(len(paths), min_gap_s=0.02, span=span)
        moves = []
        for path in paths:
            endpoint, status = _answer(path)
            moves.append(Move(client, endpoint, path, status))
        self.schedule(times, moves)
        self.description = (
            f"{client.ip} requests {len(moves)} guessed paths in {span:.0f} s ({agent.split()[0]})"
        )


class UserEnumeration(AttackEpisode):
    """One address probing 80-300 usernames, once each, where the answer tells whether
    the account exists (10-30% do): ``reset`` (202 vs 404 "no such user"), ``login``
    (401 wrong password vs 404 no such user), ``signup`` (409 taken vs 201)."""

    kind = "user_enumeration"
    accepted_kinds = ("user_enumeration",)
    variants = ("reset", "login", "signup")
    lane = "auth"
    nominal_s = 240.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        client = self.client(hosting_ipv4(rng), rng.choice(TOOL_AGENTS))
        endpoint, exists, missing = {
            "reset": (endpoints.PASSWORD_RESET, 202, 404),
            "login": (endpoints.LOGIN, 401, 404),
            "signup": (endpoints.SIGNUP, 409, 201),
        }[self.variant]
        times = self.paced(rng.randrange(80, 300), min_gap_s=0.2)
        share = 0.1 + 0.2 * rng.random()
        moves = [
            Move(
                client, endpoint, endpoint.route, exists if rng.random() < share else missing, name
            )
            for name in distinct_usernames(rng, len(times))
        ]
        self.schedule(times, moves)
        found = sum(move.status == exists for move in moves)
        self.description = (
            f"{client.ip} probes {len(moves)} usernames on {endpoint.route} "
            f"({found} answered {exists}, the rest {missing})"
        )


class Bola(AttackEpisode):
    """A logged-in customer walking object ids that are not theirs, one after the
    other. ``denied``: order ids counting up from one of their own, answered 403 (someone
    else's) or 404 (no such order); ``vulnerable``: user ids counting up from their
    own, and an API that answers every one 200 with the profile (and the addresses)."""

    kind = "bola"
    accepted_kinds = ("bola",)
    variants = ("denied", "vulnerable")
    lane = "objects"
    nominal_s = 180.0

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        rng = self.rng
        if rng.random() < 0.6:
            client = self.client(
                network.residential_ipv4(rng), rng.choice(catalogue.BROWSER_AGENTS)
            )
        else:
            client = self.client(hosting_ipv4(rng), rng.choice(TOOL_AGENTS))
        sub = web_user_id(rng)
        client.set_header("authorization", f"Bearer {issue_jwt(rng, str(sub), int(self.start_ts))}")
        user = str(sub)
        times = self.paced(rng.randrange(80, 300), min_gap_s=0.15)
        moves: list[Move] = []
        if self.variant == "vulnerable":
            next_id = sub + 1
            while len(moves) < len(times):
                path = f"/api/v1/users/{next_id}"
                moves.append(Move(client, endpoints.USER, path, 200, user))
                if rng.random() < 0.4:
                    addresses = endpoints.USER_ADDRESSES
                    moves.append(Move(client, addresses, f"{path}/addresses", 200, user))
                next_id += 1
            what = f"user ids {sub + 1}-{next_id - 1}, every one answered 200"
        else:
            own = rng.randrange(1_000_000, 10_000_000)
            moves.append(Move(client, endpoints.ORDER, f"/api/v1/orders/{own}", 200, user))
            first = own - rng.randrange(0, 50)
            for n in range(len(times) - 1):
                order = first + n
                status = 200 if order == own else 403 if rng.random() < 0.35 else 404
                moves.append(Move(client, endpoints.ORDER, f"/api/v1/orders/{order}", status, user))
            what = f"order ids from {first}, answered 403 or 404"
        self.schedule(times, moves)
        self.description = f"user {sub} at {client.ip} walks {len(times)} {what}"
