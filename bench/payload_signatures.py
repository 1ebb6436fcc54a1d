"""Own payload signatures (``detectors.payload.signatures``) on public payload lists:
recall per class, false positives on benign shop traffic, and cost.

Attack lists, from ``../shared/data`` (deduplicated per class, one payload a line):

- ssti: PayloadsAllTheThings ``Server_Side_Template_Injection``;
- xxe: PayloadsAllTheThings ``XXE_Injection`` and fuzzdb ``attack/xml``, each payload as
  an ``application/xml`` body. These lists also hold plain XML, XPath and CDATA-wrapped
  XSS; "with DTD/XInclude" counts the lines that declare a DOCTYPE or entity or name
  XInclude, the ones an XXE rule can be asked to see;
- nosqli: PayloadsAllTheThings ``NoSQL_Injection`` and fuzzdb ``attack/no-sql-injection``;
- crlf: PayloadsAllTheThings ``CRLF_Injection`` and fuzzdb ``attack/http-protocol/
  crlf-injection.txt``; "with a header" counts the lines where a line break is followed
  by a header-like ``Name:``, the ones a rule that needs a header can be asked to see;
- ssrf: fuzzdb ``attack/ip/localhost.txt`` (loopback addresses in many spellings), each
  as the host of ``http://HOST/`` (bracketed when it is IPv6).

Every other payload is the value of a parameter ``q`` as a server sees it: a payload
holding percent escapes is decoded the way ``request_params`` decodes a query value
(``+`` a space, twice when escapes are left); any other is taken verbatim.

Open-redirect payloads (PayloadsAllTheThings ``Open_Redirect``) are attacks but mostly
not SSRF: the count named ssrf shows how often a redirect trick is called a fetch.

Benign: every search phrase of the simulator's catalogue (as ``q``, with a page and a
sort), redirect and webhook URLs to public hosts, mail addresses, prices, and JSON
bodies with ordinary keys; then, from ../shared, the normal values of HttpParamsDataset
(train split) and the normal requests of CSIC 2010 (dev split), through
``request_params``. Without ../shared it says so and exits.

    python -m bench.payload_signatures [--misses N]
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import re
import timeit
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import orjson

from bench.common import SHARED_DATA
from detectors.payload.classify import Signal
from detectors.payload.params import decode_component, request_params
from detectors.payload.signatures import own_signals
from ingest.simulator import catalogue

PATT = SHARED_DATA / "payloadsallthethings"
FUZZDB = SHARED_DATA / "fuzzdb" / "attack"
CSIC = SHARED_DATA / "csic2010-dev"
LISTS: dict[str, tuple[Path, ...]] = {
    "ssti": (PATT / "Server_Side_Template_Injection",),
    "xxe": (PATT / "XXE_Injection", FUZZDB / "xml"),
    "nosqli": (PATT / "NoSQL_Injection", FUZZDB / "no-sql-injection"),
    "crlf": (PATT / "CRLF_Injection", FUZZDB / "http-protocol" / "crlf-injection.txt"),
    "ssrf": (FUZZDB / "ip" / "localhost.txt",),
}
_ESCAPED = re.compile(r"%[0-9A-Fa-f]{2}|%u[0-9A-Fa-f]{4}")
_XXE_SHAPE = re.compile(r"<!DOCTYPE|<!ENTITY|XInclude", re.IGNORECASE)
_CRLF_SHAPE = re.compile(
    r"(?:%0[ad]|\\[rn]|0x0[ad]|%u000[ad]|%E5%98%8[AD])+(?:%20|%09|\s)*[a-z][\w-]*:", re.IGNORECASE
)
Params = list[tuple[str, str]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.payload_signatures", description=__doc__)
    parser.add_argument("--misses", type=int, default=0, help="missed payloads shown per class")
    args = parser.parse_args(argv)
    if not SHARED_DATA.is_dir():
        print(f"{SHARED_DATA} is absent: no payload lists to measure")
        return
    print(f"{'class':8} {'payloads':>8} {'flagged':>8} {'named':>8} {'recall':>7}  subset")
    for subkind, sources in LISTS.items():
        payloads = sorted(set(_lines(sources)))
        if not payloads:
            print(f"{subkind:8} no list found under {SHARED_DATA}")
            continue
        flagged = named = 0
        misses: list[str] = []
        subset = subset_named = 0
        for payload in payloads:
            kinds = {s.subkind for s in _signals(subkind, payload)}
            flagged += bool(kinds)
            named += subkind in kinds
            if subkind not in kinds:
                misses.append(payload)
            if _in_subset(subkind, payload):
                subset += 1
                subset_named += subkind in kinds
        note = (
            f"{_SUBSET_NAME[subkind]}: {subset_named}/{subset} ({subset_named / subset:.0%})"
            if subkind in _SUBSET_NAME and subset
            else ""
        )
        print(
            f"{subkind:8} {len(payloads):8} {flagged:8} {named:8} "
            f"{named / len(payloads):7.1%}  {note}"
        )
        for payload in misses[: args.misses]:
            print(f"    missed: {payload[:150]!r}")
    _open_redirects()
    _benign()
    _public_benign()
    _cost()


def _open_redirects() -> None:
    """Open-redirect payloads are attacks, but most are not SSRF: those named ssrf."""
    payloads = sorted(set(_lines((PATT / "Open_Redirect",))))
    named: collections.Counter[int] = collections.Counter()
    for payload in payloads:
        for signal in own_signals([("next", _as_sent(payload))], "", ""):
            named[signal.rule_id] += signal.subkind == "ssrf"
    flagged = sum(
        any(s.subkind == "ssrf" for s in own_signals([("next", _as_sent(p))], "", ""))
        for p in payloads
    )
    rules = ", ".join(f"{rule_id}: {count}" for rule_id, count in sorted(named.items()) if count)
    print(f"open-redirect payloads {len(payloads)}, named ssrf {flagged} ({rules})")


_SUBSET_NAME = {"xxe": "with DTD/XInclude", "crlf": "with a header"}


def _in_subset(subkind: str, payload: str) -> bool:
    if subkind == "xxe":
        return _XXE_SHAPE.search(payload) is not None
    if subkind == "crlf":
        return _CRLF_SHAPE.search(payload) is not None
    return False


def _lines(sources: tuple[Path, ...]) -> Iterator[str]:
    for source in sources:
        files = sorted(source.rglob("*")) if source.is_dir() else [source]
        for path in files:
            if path.is_file() and path.name.lower() not in _NOT_PAYLOADS:
                text = path.read_text(encoding="utf-8", errors="replace")
                yield from (line for line in text.splitlines() if line.strip())


_NOT_PAYLOADS = frozenset({"readme.md", "readme.txt", "license.txt"})


def _signals(subkind: str, payload: str) -> list[Signal]:
    if subkind == "xxe":
        return own_signals([], payload, "application/xml")
    if subkind == "ssrf":
        host = payload.strip()
        value = f"http://[{host}]/" if ":" in host else f"http://{host}/"
        return own_signals([("url", _as_sent(value))], "", "")
    return own_signals([("q", _as_sent(payload))], "", "")


def _as_sent(payload: str) -> str:
    return decode_component(payload) if _ESCAPED.search(payload) else payload


def _benign_requests() -> list[tuple[Params, str, str]]:
    requests: list[tuple[Params, str, str]] = []
    for number, search in enumerate(catalogue.SEARCH_QUERIES):
        sort = catalogue.SORTS[number % len(catalogue.SORTS)]
        query = f"{search}&page={number % 5 + 1}&sort={sort}"
        requests.append((request_params(query, "", ""), "", ""))
    for category in catalogue.CATEGORIES:
        query = f"category={category}&min_price=%2419.99&max_price=%24249&in_stock=true"
        requests.append((request_params(query, "", ""), "", ""))
    for referer in catalogue.WEB_REFERERS:
        requests.append(([("next", referer), ("utm_source", "newsletter")], "", ""))
    for url in (
        "https://shop.example.com/cart?coupon=SPRING24",
        "https://hooks.partner.example/orders/created",
        "https://api.github.com/repos/acme/shop/hooks",
        "https://cdn.example.net/img/p/100042.jpg",
        "http://www.example.org/",
        "https://8.8.8.8/resolve?name=example.com",
    ):
        requests.append(([("callback_url", url)], "", ""))
    for first, last in zip(catalogue.FIRST_NAMES, catalogue.LAST_NAMES, strict=False):
        domain = catalogue.CONSUMER_MAIL_DOMAINS[len(first) % len(catalogue.CONSUMER_MAIL_DOMAINS)]
        body = orjson.dumps(
            {
                "user": {"name": f"{first} {last}", "email": f"{first}.{last}@{domain}"},
                "items": [{"sku": "SKU-100042", "qty": 2, "price": 19.99}],
                "shipping": {"address": "12 Main St, Apt 4", "note": "leave at door; ring twice"},
                "tags": ["gift", "express"],
                "total": "$39.98",
            }
        ).decode()
        requests.append((request_params("", body, "application/json"), body, "application/json"))
    return requests


def _benign() -> None:
    requests = _benign_requests()
    false_positives = [
        (params, signals)
        for params, body, content_type in requests
        if (signals := own_signals(params, body, content_type))
    ]
    print(f"benign requests {len(requests)}, flagged {len(false_positives)}")
    for params, signals in false_positives[:10]:
        print(f"    {params[:3]} -> {[(s.rule_id, s.matched) for s in signals]}")

    def run() -> None:
        for params, body, content_type in requests:
            own_signals(params, body, content_type)

    rounds = 50
    seconds = min(timeit.repeat(run, number=rounds, repeat=5))
    print(f"mean cost of a benign request above: {seconds / rounds / len(requests) * 1e6:.2f} us")


def _public_benign() -> None:
    params_csv = SHARED_DATA / "httpparams" / "payload_train.csv"
    if params_csv.is_file():
        with params_csv.open(encoding="utf-8", errors="replace", newline="") as rows:
            values = [row["payload"] for row in csv.DictReader(rows) if row["label"] == "norm"]
        flagged = [v for v in values if own_signals([("q", v)], "", "")]
        print(f"HttpParamsDataset normal values {len(values)}, flagged {len(flagged)}")
        for value in flagged[:5]:
            print(f"    {value[:100]!r}")
    events, labels = CSIC / "canonical.jsonl.gz", CSIC / "labels.jsonl"
    if not (events.is_file() and labels.is_file()):
        return
    anomalous = {orjson.loads(line)["request_id"] for line in labels.read_bytes().splitlines()}
    seen = {False: 0, True: 0}
    named: dict[bool, collections.Counter[str]] = {
        False: collections.Counter(),
        True: collections.Counter(),
    }
    with gzip.open(events, "rb") as lines:
        for line in lines:
            event = orjson.loads(line)
            content_type = (event.get("headers") or {}).get("content-type", "")
            query, body = event.get("query") or "", event.get("body") or ""
            signals = own_signals(request_params(query, body, content_type), body, content_type)
            attack = event["request_id"] in anomalous
            seen[attack] += 1
            for subkind in {s.subkind for s in signals}:
                named[attack][subkind] += 1
    print(f"CSIC 2010 normal requests {seen[False]}, flagged {sum(named[False].values())}")
    print(f"CSIC 2010 anomalous requests {seen[True]}, named {dict(named[True])}")


def _cost() -> None:
    """Best of 7 ``timeit`` runs, next to ``request_params`` of a search query measured
    the same way, so a figure from a busy machine can be read against a quiet one."""
    json_body = '{"user": {"name": {"$ne": null}}, "password": "x"}'
    xml_body = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>'
        + "<item>abc</item>" * 500
        + "&x;</r>"
    )
    cases: list[tuple[str, Params, str, str]] = [
        ("4 short pairs, no metacharacters",
         [("id", "12"), ("page", "3"), ("sort", "price_asc"), ("q", "usb c charger")], "", ""),
        ("q=men's shoes&page=2&sort=price_asc",
         request_params("q=men%27s+shoes&page=2&sort=price_asc", "", ""), "", ""),
        ("a redirect URL to a public host", [("next", "https://shop.example.com/cart")], "", ""),
        ('{"user": {"name": {"$ne": null}}, ...} and its body',
         request_params("", json_body, "application/json"), json_body, "application/json"),
        (f"a {len(xml_body) // 1000} KB XML body with an external entity", [], xml_body,
         "application/xml"),
    ]  # fmt: skip
    reference = _best(lambda: request_params("q=men%27s+shoes&page=2&sort=price", "", ""))
    print(f"reference: request_params of q=men%27s+shoes&page=2&sort=price {reference:.2f} us")
    for title, params, body, content_type in cases:
        cost = _best(partial(own_signals, params, body, content_type))
        print(f"    {title:52} {cost:7.2f} us  ({cost / reference:.2f}x the reference)")


def _best(fn: Callable[[], object]) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=7, number=number)) / number * 1e6


if __name__ == "__main__":
    main()
