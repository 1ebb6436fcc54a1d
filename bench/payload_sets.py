"""The public payload sets of ../shared/data as canonical Events, for the payload
benchmarks. Nothing here is used by the product or its tests.

- ``crs_regression``: the OWASP CRS go-ftw regression cases, one Event per test
  (single-stage tests with a plain request; raw ``encoded_request`` cases are skipped
  and counted).
- ``attack_payloads``: attack values by class from ``httpparams`` (its ``anom`` rows),
  ``payloadsallthethings`` and ``fuzzdb/attack``, deduplicated, only lines that are
  payloads (not lists of command, attribute or event-handler names, not comments,
  placeholders filled in), at most ``limit`` per class chosen deterministically and
  round-robin over the source files so no one list dominates a class.
- ``benign_values``: the ``norm`` rows of ``httpparams`` (values of CSIC 2010 normal
  requests), as extra benign parameter values.
- ``PayloadMix``: attack payloads put into requests of the simulated shop API (search
  ``q``, a product id in the path, the product list's ``category``, a JSON field of
  ``POST /api/v1/cart``, an XML body for XXE), shaped like the benign events of the
  same route, from attacker addresses, merged in time order into a benign simulated
  file and labelled in the evaluation format (EVALUATION.md).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import random
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import orjson

from bench.common import SHARED_DATA
from gatewatch.event import Event

CRS_TESTS = SHARED_DATA / "crs-regression" / "crs_tests_flat.jsonl.gz"
HTTPPARAMS = SHARED_DATA / "httpparams" / "payload_train.csv"
PATT = SHARED_DATA / "payloadsallthethings"
FUZZDB = SHARED_DATA / "fuzzdb" / "attack"
CSIC = SHARED_DATA / "csic2010-dev"


# -- CRS regression cases --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrsCase:
    name: str  # rule_id-test_id
    rule_id: int
    paranoia_level: int
    positive: bool
    expect_ids: frozenset[int]
    event: Event

    @property
    def family(self) -> int:
        """The rule file's number of the rule under test: 942, 930..."""
        return self.rule_id // 1000


def crs_regression() -> Iterator[CrsCase]:
    """Every single-stage positive or negative case with a request a log can carry."""
    with gzip.open(CRS_TESTS, "rb") as lines:
        for number, line in enumerate(lines):
            case = orjson.loads(line)
            if case["label"] not in ("positive", "negative") or len(case["stages"]) != 1:
                continue
            stage = case["stages"][0]
            request, log = stage["input"], stage["output"].get("log", {})
            event = _event(f"crs-{number}", request)
            if event is None:
                continue
            positive = case["label"] == "positive"
            ids = log.get("expect_ids" if positive else "no_expect_ids") or [case["rule_id"]]
            yield CrsCase(
                name=f"{case['rule_id']}-{case['test_id']}",
                rule_id=case["rule_id"],
                paranoia_level=case["rule_pl"],
                positive=positive,
                expect_ids=frozenset(int(i) for i in ids),
                event=event,
            )


def crs_skipped() -> int:
    """Single-stage positive or negative cases left out (a raw ``encoded_request``)."""
    skipped = 0
    with gzip.open(CRS_TESTS, "rb") as lines:
        for line in lines:
            case = orjson.loads(line)
            if case["label"] not in ("positive", "negative") or len(case["stages"]) != 1:
                continue
            request = case["stages"][0]["input"]
            skipped += bool(request.get("encoded_request") or "uri" not in request)
    return skipped


def _event(request_id: str, request: dict[str, Any]) -> Event | None:
    if request.get("encoded_request") or "uri" not in request:
        return None
    uri = str(request.get("uri") or "/")
    path, _, query = uri.partition("?")
    headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
    data = request.get("data") or ""
    body = "".join(data) if isinstance(data, list) else str(data)
    return Event(
        request_id=request_id,
        ts=0.0,
        client_ip="203.0.113.10",
        method=str(request.get("method") or "GET"),
        path=path,
        route=path,
        status=200,
        host=headers.get("host", "localhost"),
        query=query,
        request_bytes=len(body),
        user_agent=headers.get("user-agent", ""),
        body=body,
        headers=headers,
    )


# -- payload lists ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payload:
    cls: str  # sqli, xss, cmdi, traversal, lfi, ssti, xxe, nosqli, crlf, ldap, ...
    source: str  # the list it came from, relative to ../shared/data
    text: str


# Which lists hold payloads of which class. Lists of bare names (shell commands, HTML
# attributes, event handlers, LDAP attributes), fragments (php filter chain pieces)
# and templates of other applications' URLs (fuzzdb rfi, redirect templates) are not
# payloads a client would send as a value, and are left out.
_PATT_CLASSES = {
    "SQL_Injection": "sqli",
    "XSS_Injection": "xss",
    "Command_Injection": "cmdi",
    "Directory_Traversal": "traversal",
    "File_Inclusion": "lfi",
    "LDAP_Injection": "ldap",
    "NoSQL_Injection": "nosqli",
    "Open_Redirect": "open_redirect",
    "Server_Side_Template_Injection": "ssti",
    "XXE_Injection": "xxe",
    "CRLF_Injection": "crlf",
}
_PATT_SKIP = frozenset(
    {
        "XSS_Injection/0xcela_event_handlers.txt",
        "XSS_Injection/port_swigger_xss_cheatsheet_event_handlers.txt",
        "LDAP_Injection/LDAP_attributes.txt",
        "File_Inclusion/php-filter-iconv.txt",
        "File_Inclusion/Web-files.txt",
    }
)
_FUZZDB_CLASSES = {
    "sql-injection/detect": "sqli",
    "sql-injection/exploit": "sqli",
    "sql-injection/payloads-sql-blind": "sqli",
    "xss/XSSPolyglot.txt": "xss",
    "xss/xss-other.txt": "xss",
    "xss/xss-rsnake.txt": "xss",
    "xss/xss-uri.txt": "xss",
    "xss/JHADDIX_XSS_WITH_CONTEXT.doc.txt": "xss",
    "html_js_fuzz/HTML5sec_Injections.txt": "xss",
    "html_js_fuzz/js_inject.txt": "xss",
    "os-cmd-execution/command-execution-unix.txt": "cmdi",
    "os-cmd-execution/OSCommandInject.Windows.txt": "cmdi",
    "os-cmd-execution/command-injection-template.txt": "cmdi",
    "path-traversal": "traversal",
    "lfi": "lfi",
    "no-sql-injection/mongodb.txt": "nosqli",
    "ldap/ldap-injection.txt": "ldap",
    "xpath/xpath-injection.txt": "xpath",
    "xml/xml-attacks.txt": "xxe",
    "xss/test.xxe": "xxe",
    "http-protocol/crlf-injection.txt": "crlf",
    "server-side-include/server-side-includes-generic.txt": "ssi",
}
_HTTPPARAMS_CLASSES = {
    "sqli": "sqli",
    "xss": "xss",
    "cmdi": "cmdi",
    "path-traversal": "traversal",
}
_NAME_ONLY = re.compile(r"[\w-]*")
_XML = re.compile(r"<!ENTITY|<!DOCTYPE|\bSYSTEM\s+[\"']", re.IGNORECASE)
_EXPLOIT_STRING = "Exploit String: "
MAX_PAYLOAD = 2000


def attack_payloads(limit: int = 300) -> dict[str, list[Payload]]:
    """Up to ``limit`` distinct payloads per class, chosen deterministically: each
    source list's payloads ordered by a hash of their text, then taken round-robin
    over the class's lists (sorted by name)."""
    by_class: dict[str, dict[str, list[str]]] = {}
    seen: dict[str, set[str]] = {}
    for payload in _all_payloads():
        known = seen.setdefault(payload.cls, set())
        if payload.text in known:
            continue
        known.add(payload.text)
        by_class.setdefault(payload.cls, {}).setdefault(payload.source, []).append(payload.text)
    chosen: dict[str, list[Payload]] = {}
    for cls in sorted(by_class):
        lists = {source: sorted(texts, key=_hash) for source, texts in by_class[cls].items()}
        picked: list[Payload] = []
        depth = 0
        while len(picked) < limit and any(depth < len(t) for t in lists.values()):
            for source in sorted(lists):
                if depth < len(lists[source]) and len(picked) < limit:
                    picked.append(Payload(cls, source, lists[source][depth]))
            depth += 1
        chosen[cls] = picked
    return chosen


def benign_values(limit: int | None = None) -> list[str]:
    """The distinct ``norm`` values of httpparams (CSIC 2010 normal parameter values),
    ordered by a hash of their text."""
    values: set[str] = set()
    with HTTPPARAMS.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["label"] == "norm" and row["payload"].strip():
                values.add(row["payload"])
    ordered = sorted(values, key=_hash)
    return ordered[:limit] if limit is not None else ordered


def _all_payloads() -> Iterator[Payload]:
    with HTTPPARAMS.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            cls = _HTTPPARAMS_CLASSES.get(row["attack_type"])
            if row["label"] == "anom" and cls:
                yield from _payloads(cls, "httpparams/payload_train.csv", [row["payload"]])
    for folder, cls in sorted(_PATT_CLASSES.items()):
        for path in sorted((PATT / folder).glob("*")):
            name = f"{folder}/{path.name}"
            if path.is_file() and name not in _PATT_SKIP:
                yield from _payloads(cls, f"payloadsallthethings/{name}", _lines(path))
    for prefix, cls in sorted(_FUZZDB_CLASSES.items()):
        target = FUZZDB / prefix
        paths = sorted(target.glob("*.txt")) if target.is_dir() else [target]
        for path in paths:
            if path.is_file():
                source = f"fuzzdb/attack/{path.relative_to(FUZZDB)}"
                yield from _payloads(cls, source, _lines(path))


def _lines(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8", "replace")
    if path.name.endswith(".doc.txt"):  # "Exploit String: ..." entries among prose
        return [
            line[len(_EXPLOIT_STRING) :]
            for line in text.splitlines()
            if line.startswith(_EXPLOIT_STRING)
        ]
    if path.suffix == ".xxe":  # one document
        return [" ".join(text.split())]
    return text.splitlines()


def _payloads(cls: str, source: str, lines: Iterable[str]) -> Iterator[Payload]:
    for number, raw in enumerate(lines):
        text = raw.rstrip("\r\n")
        if not text.strip() or text.startswith(("# ", "#!")) or len(text) > MAX_PAYLOAD:
            continue
        if _NAME_ONLY.fullmatch(text) and cls not in ("sqli", "ldap"):
            continue  # a bare name or word ("onload", "FSCommand"): not a payload
        if len(text.strip()) < 2 and cls not in ("ldap", "sqli"):
            continue
        if "XXpathXX" in text or "{target}" in text:
            continue
        if len(text) > 2 and text[0] == text[-1] == '"' and '""' in text:
            text = text[1:-1].replace('""', '"')  # a line kept CSV-quoted in its list
        text = _fill(text, number)
        if cls == "xxe" and not _XML.search(text):
            continue  # the xml lists also hold XPath, SQL and plain XML documents
        yield Payload(cls, source, text)


def _fill(text: str, number: int) -> str:
    """Placeholders of the template lists, filled as an attacker's tool would."""
    for mark in ("{FILE}", "{file}"):
        text = text.replace(mark, ("etc/passwd", "windows/win.ini")[number % 2])
    if "{cmd}" in text:
        text = text.replace("{cmd}", ("id", "cat /etc/passwd")[number % 2])
    return text.replace("<username>", "admin").replace("__TIME__", "5")


def _hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest()


# -- payloads in simulated traffic -----------------------------------------------------

SLOTS = ("search_q", "product_path", "category", "cart_json")
_SLOTS_BY_CLASS = {"xxe": ("xml_body",), "crlf": ("search_q", "product_path", "category")}
_ESCAPED = re.compile(r"%[0-9A-Fa-f]{2}")
_NAME_INJECTION = re.compile(r"\[(\$?\w+)\]=(.*)", re.DOTALL)
_DROP_HEADERS = frozenset({"cookie", "authorization", "x-forwarded-for", "referer"})
_SAFE_PRE_ENCODED = "%!$'()*,-.:;=@_~/"  # a list's own escapes are kept as they are
_ROUTES = {
    "search_q": ("GET", "/api/v1/search"),
    "product_path": ("GET", "/api/v1/products/{productId}"),
    "category": ("GET", "/api/v1/products"),
    "cart_json": ("POST", "/api/v1/cart"),
    "xml_body": ("POST", "/api/v1/orders"),
}
_STATUS = {"search_q": 200, "product_path": 404, "category": 200, "cart_json": 400, "xml_body": 415}


@dataclass(slots=True)
class MixStats:
    benign: int = 0
    attacks: dict[str, int] = field(default_factory=dict)  # class -> requests
    slot_of: dict[str, str] = field(default_factory=dict)  # attack request id -> slot
    payload_of: dict[str, Payload] = field(default_factory=dict)  # attack request id
    norm_ids: set[str] = field(default_factory=set)  # benign requests with httpparams values
    cart_bodies: int = 0  # benign cart requests given a JSON body
    attacker_ips: int = 0


class PayloadMix:
    """Attack payloads put into requests of the simulated API and merged into benign
    simulated traffic (``build``).

    ``per_ip``: at most this many payloads from one attacker address (groups of 1 to
    ``per_ip`` requests a few seconds apart, starting at random times), or 1: each
    payload from its own address at a random time. Requests copy the shape of a benign
    request of the same route (host, scheme, TLS, user agent, headers without the
    session's credentials) and get fresh request ids. Benign ``POST /api/v1/cart``
    requests get the JSON body the route takes (``product_id``, ``quantity``: the
    simulator logs no bodies), so the JSON field an attack uses is one benign traffic
    uses too. ``benign`` values (httpparams ``norm`` rows) go into the search ``q`` of
    copies of benign search requests, same client, as extra benign traffic.
    """

    def __init__(
        self,
        payloads: dict[str, list[Payload]],
        *,
        per_ip: int,
        seed: int = 303,
        benign: Iterable[str] = (),
        warmup_s: float = 300.0,
    ) -> None:
        self.payloads = payloads
        self.per_ip = per_ip
        self.seed = seed
        self.benign = list(benign)
        self.warmup_s = warmup_s

    def build(self, benign_canonical: Path, out_dir: Path) -> MixStats:
        """Write ``out_dir``/canonical.jsonl, labels.jsonl and attacks.json."""
        rng = random.Random(self.seed)
        lines: list[tuple[float, int, bytes]] = []
        templates: dict[str, list[dict[str, Any]]] = {slot: [] for slot in _ROUTES}
        search: list[dict[str, Any]] = []
        ips: set[str] = set()
        stats = MixStats()
        with benign_canonical.open("rb") as handle:
            for number, line in enumerate(handle):
                if not line.strip():
                    continue
                event = orjson.loads(line)
                ips.add(event.get("client_ip") or "")
                slot = _slot_of(event)
                text = line
                if slot == "cart_json":
                    event["body"] = _cart_body(event["request_id"])
                    text = orjson.dumps(event) + b"\n"
                    stats.cart_bodies += 1
                if slot is not None and len(templates[slot]) < 2000:
                    templates[slot].append(event)
                if slot == "search_q" and len(search) < 20000:
                    search.append(event)
                lines.append((_epoch(event["ts"]), number, text))
                stats.benign += 1
        if not lines:
            raise ValueError(f"{benign_canonical} holds no events")
        start, end = lines[0][0], lines[-1][0]
        first, last = start + min(self.warmup_s, (end - start) / 10), end - 60
        extra: list[tuple[float, int, bytes]] = []
        labels: list[bytes] = []
        spans: dict[str, list[float]] = {}
        serial = len(lines)
        for cls in sorted(self.payloads):
            chosen = list(self.payloads[cls])
            rng.shuffle(chosen)
            slots = _SLOTS_BY_CLASS.get(cls, SLOTS)
            i = 0
            while i < len(chosen):
                size = 1 if self.per_ip <= 1 else rng.randint(1, self.per_ip)
                group = chosen[i : i + size]
                ip = _attacker_ip(rng, ips)
                stats.attacker_ips += 1
                at = first + rng.random() * (last - first)
                agent = rng.choice(("template", "template", "curl/8.4.0", "python-requests/2.31.0"))
                for payload in group:
                    slot = slots[i % len(slots)]  # the payloads are shuffled: balanced
                    template = rng.choice(templates[slot] or templates["search_q"])
                    event = _attack_event(template, slot, payload.text, rng, ip, at, agent)
                    rid = event["request_id"]
                    stats.slot_of[rid], stats.payload_of[rid] = slot, payload
                    stats.attacks[cls] = stats.attacks.get(cls, 0) + 1
                    serial += 1
                    extra.append((at, serial, orjson.dumps(event) + b"\n"))
                    labels.append(orjson.dumps({"request_id": rid, "attack_id": cls}) + b"\n")
                    span = spans.setdefault(cls, [at, at])
                    span[0], span[1] = min(span[0], at), max(span[1], at)
                    at += 1.0 + rng.random() * 14.0
                    i += 1
        for value in self.benign:
            if not search:
                break
            template = rng.choice(search)
            event = dict(template)
            event["request_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            at = _epoch(template["ts"]) + 0.5 + rng.random() * 20
            event["ts"] = _iso(at)
            event["query"] = "q=" + quote_plus(value, safe="")
            event["request_bytes"] = int(template.get("request_bytes") or 0) + len(value)
            stats.norm_ids.add(event["request_id"])
            serial += 1
            extra.append((at, serial, orjson.dumps(event) + b"\n"))
        merged = sorted(lines + extra)
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "canonical.jsonl").open("wb") as out:
            out.writelines(line for _, _, line in merged)
        (out_dir / "labels.jsonl").write_bytes(b"".join(labels))
        attacks = [
            {
                "attack_id": cls,
                "accepted_kinds": [
                    "injection",
                    "malformed_request",
                    "oversized_payload",
                    "anomaly",
                ],
                "start": _iso(spans[cls][0]),
                "end": _iso(spans[cls][1]),
                "kind": "injection",
                "requests": stats.attacks[cls],
                "description": f"{cls} payloads from public lists, {self.per_ip} at most per IP",
            }
            for cls in sorted(spans)
        ]
        (out_dir / "attacks.json").write_bytes(orjson.dumps(attacks, option=orjson.OPT_INDENT_2))
        stats.benign += len(stats.norm_ids)
        return stats


def _slot_of(event: dict[str, Any]) -> str | None:
    method, path = event.get("method"), event.get("path") or ""
    if method == "GET":
        if path == "/api/v1/search":
            return "search_q"
        if path == "/api/v1/products":
            return "category"
        if path.startswith("/api/v1/products/") and path.count("/") == 4:
            return "product_path"
    elif method == "POST":
        if path == "/api/v1/cart":
            return "cart_json"
        if path == "/api/v1/orders":
            return "xml_body"
    return None


def _cart_body(request_id: str) -> str:
    h = int.from_bytes(_hash(request_id), "big")
    return orjson.dumps({"product_id": 100_000 + h % 20_000, "quantity": 1 + h % 3}).decode()


def _attacker_ip(rng: random.Random, taken: set[str]) -> str:
    while True:
        first = rng.choice((45, 91, 103, 146, 185, 193))
        ip = f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if ip not in taken:
            taken.add(ip)
            return ip


def _attack_event(
    template: dict[str, Any],
    slot: str,
    payload: str,
    rng: random.Random,
    ip: str,
    at: float,
    agent: str,
) -> dict[str, Any]:
    method, _ = _ROUTES[slot]
    headers = {k: v for k, v in (template.get("headers") or {}).items() if k not in _DROP_HEADERS}
    user_agent = (template.get("user_agent") or "") if agent == "template" else agent
    path, query, body = template.get("path") or "/", "", ""
    if slot == "search_q":
        path, query = "/api/v1/search", _query("q", payload)
        if rng.random() < 0.3:
            query += f"&page={rng.randint(2, 5)}"
    elif slot == "category":
        path, query = "/api/v1/products", _query("category", payload) + f"&page={rng.randint(1, 3)}"
    elif slot == "product_path":
        path = "/api/v1/products/" + _encode(payload, path=True)
    elif slot == "cart_json":
        path = "/api/v1/cart"
        body = orjson.dumps({"product_id": _json_value(payload), "quantity": 1}).decode()
        headers["content-type"] = "application/json"
    elif slot == "xml_body":
        path, body = "/api/v1/orders", payload
        headers["content-type"] = "application/xml"
    if body:
        headers["content-length"] = str(len(body.encode("utf-8", "surrogateescape")))
    else:
        headers.pop("content-length", None)
        headers.pop("content-type", None)
    return {
        **template,
        "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "ts": _iso(at),
        "client_ip": ip,
        "method": method,
        "path": path,
        "query": query,
        "status": _STATUS[slot],
        "request_bytes": 300 + len(path) + len(query) + len(body) + len(user_agent),
        "response_bytes": 120 if _STATUS[slot] >= 400 else template.get("response_bytes", 0),
        "user_agent": user_agent,
        "user": "",
        "api_key": "",
        "body": body,
        "headers": headers,
    }


def _query(name: str, payload: str) -> str:
    injected = _NAME_INJECTION.fullmatch(payload)
    if injected is not None:  # [$ne]=1: an operator in the parameter's name
        operator, value = injected.groups()
        return f"{name}[{quote(operator, safe='$')}]={_encode(value, path=False)}"
    return f"{name}={_encode(payload, path=False)}"


def _encode(payload: str, *, path: bool) -> str:
    """A value as an attack tool puts it in a URL: a list's own escapes (``%2e%2e``)
    are kept and only what would break the URL is escaped; a plain payload is
    percent-encoded whole, as a browser or sqlmap does."""
    if _ESCAPED.search(payload):
        safe = _SAFE_PRE_ENCODED.replace("/", "") if path else _SAFE_PRE_ENCODED
        return quote(payload, safe=safe)
    return quote(payload, safe="") if path else quote_plus(payload, safe="")


def _json_value(payload: str) -> Any:
    injected = _NAME_INJECTION.fullmatch(payload)
    if injected is not None:
        return {injected.group(1): injected.group(2)}
    if payload.lstrip()[:1] in ("{", "["):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    return payload


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
