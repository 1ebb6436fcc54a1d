"""Own signatures for five injection classes CRS 3.3 at paranoia level 1 misses.

The Core Rule Set names SQL, script, command and path attacks; these rules name the
rest a finding must call by a subkind:

- ``ssti`` (9901xx): template expressions with arithmetic probes, object traversal,
  engine globals or code gadgets (Jinja, Twig, Mako, Freemarker, Velocity, Spring EL,
  OGNL, Thymeleaf, ERB, JSP, Smarty, Handlebars);
- ``xxe`` (9902xx): external or parameter entities, external DTDs, entity expansion,
  XInclude, in a value or in a body that is neither a form nor JSON;
- ``nosqli`` (9903xx): MongoDB operators in parameter names (``user[$ne]``, or
  ``user.$ne`` from a JSON body), operator objects in values or JSON bodies, and
  JavaScript tautologies or statements for ``$where`` (``' || 'a'=='a``, ``';return 1;'``);
- ``crlf`` (9904xx): a line break (raw, still percent-encoded, or U+560A/U+560D, whose
  low bytes are LF and CR) followed by a response header, a status line or a blank
  line and markup;
- ``ssrf`` (9905xx): a URL to a loopback, link-local or cloud metadata, private or
  intranet host, or to an IP address in an obfuscated form (``http://2130706433``,
  ``http://0x7f.1``, ``http://127.0.0.1.nip.io``), or of a scheme only a server-side
  fetcher speaks (``gopher://``, ``dict://``, ``file://``).

False positives cost more than misses: each rule needs a shape that ordinary text,
prices (``$19.99``), JSON and public URLs do not have; ``{`` or ``$`` alone never match.
A template placeholder (``{{name}}``, ``${HOME}``) is not a probe, a URL to a public
host is not a fetch, and a line break in free text is not a header unless a response
header's name and value follow it. Template, XML, MongoDB and JavaScript tokens are
matched case-sensitively, as their parsers read them; header names and URLs are not.

Overlaps and limits: a URL in an XXE ``SYSTEM`` identifier is named ssrf too when it is
internal or of a fetch scheme. Not matched: line breaks with no header after them, IPv6
literals that are not valid IPv6, Velocity's ``$class`` outside ``#set``. A route that
takes template source (a store's own email editor: ``{% if %}``) or MongoDB operators by
design (Strapi or Feathers filters) needs an exclusion; a loopback ``redirect_uri`` is
let through (RFC 8252, native apps).

Cost: a value meets one character-class pre-check before any rule runs, each class
has a gate, and each pattern names substrings it needs (``in`` tests). Patterns that
run over a body start with a literal, so the regex engine skips to candidates; a run of
openers or line breaks costs linear time (a test holds hostile shapes to milliseconds).
Measured by ``python -m bench.payload_signatures`` (``timeit``, best of 7) on a shared
2-core machine, next to ``request_params`` of ``q=men%27s+shoes&page=2&sort=price``
timed alongside (1.8 to 1.9 us in the quietest runs; 1.6 us in its docstring): 4 short
pairs without metacharacters 1.4 to 1.6 us (0.8 times the reference);
``q=men's shoes&page=2&sort=price_asc`` 1.2 to 1.3 us; a redirect URL to a public host
2.3 to 4.8 times the reference; ``{"user": {"name": {"$ne": null}}}`` with its body 5
to 6 times; an 8 KB XML body with an external entity 17 to 26 times.
"""

from __future__ import annotations

import re
import socket
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv6Address
from typing import NamedTuple
from urllib.parse import unquote

from detectors.payload.classify import FRAGMENT_MAX, Signal

BODY_SCAN = 65_536
"""Characters of a raw body the rules read: a DTD sits in the prolog, at the start."""
MAX_URLS = 8
"""URLs judged per value, so a value holding thousands costs no more than a few."""


@dataclass(frozen=True, slots=True)
class Rx:
    """A pattern, and the substrings it cannot match without: it runs only when one of
    them is in the text (``in`` is far cheaper than a regex that finds nothing)."""

    needles: tuple[str, ...]
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Signature:
    """One own rule: the finding it names and the patterns, any of which matches it
    (none for the URL rules, whose test is code)."""

    rule_id: int
    subkind: str
    severity: int  # as CRS: 2 critical, 3 error
    title: str
    patterns: tuple[Rx, ...] = ()


def _rx(needles: str, pattern: str) -> Rx:
    """``needles``: space-separated; empty when the class's gate is enough."""
    return Rx(tuple(needles.split()), re.compile(pattern))


# Patterns start with a literal where they can (a lookbehind after it checks what comes
# before), so the regex engine skips to candidates instead of trying every position.
_NUM = r"\d+\s*[*+/%-]\s*['\"]?\d+['\"]?\s*"
# Openers whose contents an engine evaluates. A gadget must follow one with no "{" or "<"
# between, so a run of openers costs one short scan each, not 200 characters each.
_OPEN = r"(?:\{\{|\{%|[$#*@~%]\{|<%)[^\n{<]{0,200}?"
SSTI = (
    Signature(990100, "ssti", 2, "arithmetic probe in template delimiters", (
        _rx("{", r"[$#*@~%{]\{\{?\s*=?\s*" + _NUM + r"\}\}?"),  # {{7*7}} ${7*7} #{7*7}
        _rx("{", r"\{\s*\d+\s*\*\s*['\"]?\d+['\"]?\s*\}"),  # Smarty {7*7}
        _rx("<%", r"<%[=-]?\s*" + _NUM + r"%>"),
        _rx("[=", r"\[=\s*" + _NUM + r"\]"),  # Freemarker [=7*7]
        _rx("[[", r"\[\[\s*\d+\s*\*\s*['\"]?\d+['\"]?\s*\]\]"),  # Thymeleaf, not [[2020-21]]
        _rx("@(", r"@\(\s*" + _NUM + r"\)"),  # Razor
    )),
    Signature(990101, "ssti", 2, "Python or Java object traversal in a template expression", (
        _rx("__ \\x5f attr mro subclasses class system popen subprocess",
            _OPEN + r"(?:__(?:class|mro|subclasses|globals|builtins|import|bases?"
            r"|init|getitem|getattribute|dict|self|func|code|reduce|loader|spec)__|\\x5f\\x5f"
            r"|\|\s*attr\s*\(|\.(?:mro|subclasses)\s*\(|\.class\s*\.\s*(?:base|mro)\b"
            r"|\bos\s*\.\s*(?:system|popen)\s*\(|\bsubprocess\s*\.)"),
    )),
    Signature(990102, "ssti", 2, "template engine globals or sandbox-escape gadgets", (
        _rx("{{", r"\{\{-?\s*(?:config|self|_self|cycler|joiner|namespace|lipsum|url_for"
            r"|get_flashed_messages|request\s*\.\s*(?:application|environ)|settings\s*\.\s*\w"
            r"|app\s*\.\s*request|dump\s*\(|range\s*\(\s*\d)\b"),
        _rx("{{", r"\{\{-?\s*request\s*-?\}\}"),
        _rx("{", r"(?:\{\{|[$#*]\{)-?\s*(?:'[^']*'|\"[^\"]*\")\s*\.\s*\w+\s*\([^)]*\)"),  # 'a'.f()
        _rx("{{", r"\{\{[^{}\n]{0,200}?(?:\bconstructor\b|__proto__|registerUndefinedFilterCallback"
            r"|getFilter\s*\(|require\s*\(\s*['\"]child_process|\|\s*(?:filter|map|reduce|sort)"
            r"\s*\(\s*['\"]?(?:system|exec|passthru|shell_exec|popen))"),
    )),
    Signature(990103, "ssti", 2, "Java expression-language, Freemarker or Velocity gadget", (
        _rx("java Class forName Runtime ProcessBuilder freemarker ?new _memberAccess getMethod"
            " invoke",
            _OPEN + r"(?:\bT\s*\(\s*java\.|java\.lang\.|javax\.script"
            r"|\.getClass\s*\(|getClassLoader|\.forName\s*\(|getRuntime\s*\(|ProcessBuilder"
            r"|freemarker\.template|\?new\s*\(|@java\.|#_memberAccess|new\s+java\."
            r"|\.getMethod\s*\(|\.invoke\s*\()"),
        _rx("#assign", r"[<\[]#assign\b"),
        _rx("#set", r"#set\s*\(\s*\$\w+\s*="),
        _rx("#foreach", r"#foreach\s*\(\s*\$"),
        _rx("__$", r"__\$\{[^}]{1,200}\}__"),  # Thymeleaf preprocessing
    )),
    Signature(990104, "ssti", 2, "server-side scriptlet (ERB, JSP, ASP, Mako)", (
        _rx("<%", r"<%[=#-]?[^%]{1,200}?%>"),
    )),
    Signature(990105, "ssti", 3, "template statement tag (Jinja, Twig, Django, Smarty)", (
        _rx("{%", r"\{%-?\s*(?:import|from|set|for|if|include|extends|load|debug|macro|block"
            r"|raw|print|with|call|filter|autoescape|sandbox|embed|do|module|exec|python|ssi)\b"),
        _rx("{", r"\{(?:/?php\}|\$smarty\.|(?:system|passthru|exec|shell_exec|popen|proc_open"
            r"|eval|include_php|Smarty_Internal_\w+)\b\s*[(:]|(?:include|fetch)\s+file\s*=)"),
    )),
)  # fmt: skip

# XML is case-sensitive: "<!entity" declares nothing.
_XNAME = r"[\w.:-]+"
XXE = (
    Signature(990200, "xxe", 2, "external entity (SYSTEM or PUBLIC)", (
        _rx("<!ENTITY", r"<!ENTITY\s+(?:%\s*)?" + _XNAME + r"\s+(?:SYSTEM|PUBLIC)\b"),
    )),
    Signature(990201, "xxe", 2, "parameter entity", (
        _rx("<!ENTITY", r"<!ENTITY\s+%\s*" + _XNAME),
    )),
    Signature(990202, "xxe", 2, "external DTD", (
        _rx("<!DOCTYPE", r"<!DOCTYPE\s+" + _XNAME + r"\s+(?:SYSTEM\b|PUBLIC\s+([\"'])[^\"']*\1"
            r"\s*[\"'](?!https?://www\.w3\.org/))"),
    )),
    Signature(990203, "xxe", 3, "internal entity declaration (entity expansion)", (
        _rx("<!ENTITY", r"<!ENTITY\s+" + _XNAME + r"\s+[\"']"),
    )),
    Signature(990204, "xxe", 2, "XInclude", (
        _rx("xi:include", r"<xi:include\b"),  # xsl:include and xs:include are not XInclude
        _rx("XInclude", r"www\.w3\.org/2001/XInclude"),
    )),
)  # fmt: skip

# MongoDB query operators. Those of the first list have no place in a filter a client
# builds for a catalogue; the second appear in filter APIs (Strapi ``filters[x][$eq]``,
# Feathers ``price[$gt]``), so in a name alone they are an error, not critical. Left out:
# operators no injection needs whose names JSON uses for other things (.NET's "$type").
_OPS_STRONG = "ne|nin|regex|where|exists|expr|function|accumulator|jsonSchema"
_OPS_FILTER = "gt|gte|lt|lte|eq|in|or|and|nor|not|elemMatch"
_OPS = f"(?:{_OPS_STRONG}|{_OPS_FILTER})"
_OPERAND = r"(?:'[^']{0,40}'?|\"[^\"]{0,40}\"?|[\w$.]+)"
NOSQLI_NAME = (
    Signature(990300, "nosqli", 2, "MongoDB operator in a parameter name", (
        _rx("", rf"(?P<token>\$(?<![^.\[]\$)(?:{_OPS_STRONG}))(?=$|[\].\[])"),
    )),
    Signature(990301, "nosqli", 3, "MongoDB comparison operator in a parameter name", (
        _rx("", rf"(?P<token>\$(?<![^.\[]\$)(?:{_OPS_FILTER}))(?=$|[\].\[])"),
    )),
)  # fmt: skip
NOSQLI_VALUE = (
    Signature(990302, "nosqli", 2, "MongoDB operator object or $where in a value", (
        _rx("$", r"\$(?<![\w$]\$)" + _OPS + r"(?![\w$])[\"']?\s*[:\]]"),  # {"$gt": ""}, [$ne]
        _rx("$where", r"\$where\b"),
    )),
    Signature(990303, "nosqli", 2, "JavaScript tautology for a $where clause", (
        _rx("|| &&", r"(?:\|\||&&)\s*(?:" + _OPERAND + r"\s*[!=]==?\s*" + _OPERAND
            + r"|\(\s*" + _OPERAND + r"\s*[!=]==?|this\s*\.\s*\w)"),
    )),
    Signature(990304, "nosqli", 2, "JavaScript statement for $where or the mongo shell", (
        _rx(";", r";(?<![^'\"\d)];)\s*(?:return\s*(?:true\b|false\b|\d+\s*;|['\"!(]|this\b"
            r"|\w+\s*[=!]=)"
            r"|sleep\s*\(\s*\d|db\s*\.\s*\w+\s*[.(]|var\s+\w+\s*=|while\s*\(\s*(?:true|1)\s*\)"
            r"|this\s*\.\s*\w|\w+\s*=\s*new\s+Date\s*\()"),
        _rx("db", r"db(?<!\wdb)\s*\.\s*(?:(?:getCollection|getSiblingDB|dropDatabase|eval)"
            r"|\w+\s*\.\s*(?:insert|find|update|remove|drop|delete|aggregate|mapReduce|count"
            r"|save)\w*)\s*\("),
        _rx("this", r"this(?<!\wthis)\s*\.\s*\w+\s*(?:[=!]==?|\.\s*match\s*\()"),
    )),
)  # fmt: skip
# In a JSON body an operator is a key, so the pattern can start at the quote.
_BODY_OPERATOR = re.compile(r"\"\$" + _OPS + r"\"\s*:")

# A line break as a header parser may see it: raw, still percent-encoded after the
# decoding ``request_params`` does, or U+560A/U+560D, whose low bytes are LF and CR.
# The last break of a run is the one a header follows: matching only there keeps a
# value of thousands of breaks linear.
_BREAK = r"(?i:[\r\n\u560a\u560d]|%0[ad]|%e5%98%8[ad]|%u000[ad])"
_NL = _BREAK + "(?!" + _BREAK + ")"
CRLF = (
    Signature(990400, "crlf", 2, "line break followed by a response header", (
        _rx("", _NL + r"[ \t]*(?i:set-cookie[ \t]*:[ \t]*[^\s=;:]+=|location[ \t]*:[ \t]*"
            r"(?:[a-z][a-z0-9+.-]*:|/)|content-type[ \t]*:|content-length[ \t]*:[ \t]*\d"
            r"|content-(?:disposition|security-policy|encoding)[ \t]*:|refresh[ \t]*:[ \t]*\d"
            r"|access-control-allow-[\w-]+[ \t]*:|transfer-encoding[ \t]*:"
            r"|x-xss-protection[ \t]*:|cache-control[ \t]*:|cookie[ \t]*:[ \t]*[^\s=;:]+="
            r"|link[ \t]*:[ \t]*<|authorization[ \t]*:[ \t]*(?:basic|bearer|digest)\b)"),
    )),
    Signature(990401, "crlf", 3, "line break and an extension header, status line or markup", (
        _rx("", _NL + r"[ \t]*(?i:x-[a-z0-9-]+[ \t]*:|http/\d(?:\.\d)?[ \t]+\d{3}\b)"),
        _rx("", _BREAK + _NL + r"[ \t]*<(?i:html|script|svg|body|iframe|meta)\b"),
    )),
)  # fmt: skip

SSRF_LOOPBACK = Signature(990500, "ssrf", 2, "URL to a loopback or unspecified address")
SSRF_METADATA = Signature(990501, "ssrf", 2, "URL to a link-local or cloud metadata address")
SSRF_PRIVATE = Signature(990502, "ssrf", 3, "URL to a private or intranet host")
SSRF_SCHEME = Signature(990503, "ssrf", 2, "URL of a scheme only a server-side fetcher uses")
SSRF_ENCODED = Signature(990504, "ssrf", 2, "URL to an internal address in an obfuscated form")
# Decimal, hex or octal forms of a public address evade URL filters (open redirects
# too); without an internal target they are an error, not critical.
SSRF_ENCODED_PUBLIC = Signature(990505, "ssrf", 3, "URL to a public address in an obfuscated form")
SSRF = (SSRF_LOOPBACK, SSRF_METADATA, SSRF_PRIVATE, SSRF_SCHEME, SSRF_ENCODED, SSRF_ENCODED_PUBLIC)

SIGNATURES: tuple[Signature, ...] = (*SSTI, *XXE, *NOSQLI_NAME, *NOSQLI_VALUE, *CRLF, *SSRF)
"""Every own rule, in rule id order."""

# Gates: a character every rule of the class needs. The pre-check is their union: a
# value with none of them skips every text rule (URLs need a "/" or "\").
_Group = tuple[re.Pattern[str], tuple[Signature, ...]]
_VALUE_GROUPS: tuple[_Group, ...] = (
    (re.compile(r"[{%#\[(]"), SSTI),
    (re.compile(r"<!|xi:include|XInclude"), XXE),
    (re.compile(r"[$|&;(=]"), NOSQLI_VALUE),
    (re.compile(r"[\r\n%\u560a\u560d]"), CRLF),
)
_NAME_GROUPS: tuple[_Group, ...] = (
    (re.compile(r"\$"), NOSQLI_NAME),
    (re.compile(r"[\r\n%\u560a\u560d]"), CRLF),
)
_VALUE_PRECHECK = re.compile(r"[{%\[(<$|&;=\r\n\u560a\u560d]")
_NAME_PRECHECK = re.compile(r"[$\r\n%\u560a\u560d]")

_AUTHORITY = re.compile(r":([/\\]{1,3})([^/?#\\\s\"'<>]{0,255})")
_RELATIVE = re.compile(r"\s*[/\\]{2}([^/?#\\\s\"'<>]{0,255})")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{1,15}\Z", re.IGNORECASE)
_SCHEME_CHAR = re.compile(r"[\w+.-]")
_WEB_SCHEMES = frozenset({"http", "https", "ftp", "ws", "wss"})
# Schemes an SSRF reaches other services with (smb: to leak NTLM credentials).
_FETCH_SCHEMES = frozenset({"gopher", "dict", "file", "tftp", "ldap", "ldaps", "netdoc", "smb"})
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]+|\d+)(?:\.(?:0x[0-9a-f]*|\d+)){0,3}")
_EMBEDDED_IP = re.compile(r"(?<![\d])(\d{1,3})[.-](\d{1,3})[.-](\d{1,3})[.-](\d{1,3})(?![\d])")
_PLAIN_NAME = re.compile(r"[a-z_-]+(?:\.[a-z_-]+)*")
_LABEL = re.compile(r"(?=[a-z0-9-]*[a-z])[a-z0-9-]{1,63}")  # a name without a dot: intranet
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_LOOPBACK_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "localtest.me",
     "lvh.me", "vcap.me", "localh.st"}
)  # fmt: skip
_LOOPBACK_SUFFIXES = (".localhost", ".localtest.me", ".lvh.me", ".vcap.me")
_METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
     "instance-data.ec2.internal", "metadata.tencentyun.com"}
)  # fmt: skip
_INTERNAL_SUFFIXES = (".internal", ".local", ".localdomain", ".home.arpa", ".svc", ".intranet",
                      ".corp", ".lan")  # fmt: skip
# Metadata services outside 169.254/16: Alibaba, Oracle, Azure's wire server.
_METADATA_V4 = frozenset({0x646464C8, 0xC00000C0, 0xA83F8110})
_METADATA_V6 = IPv6Address("fd00:ec2::254")


def own_signals(params: Sequence[tuple[str, str]], body: str, content_type: str) -> list[Signal]:
    """One signal per own rule the request matches, in rule id order.

    ``params`` are the decoded ``(name, value)`` pairs (``request_params``); ``body`` is
    read for what they cannot show: an XML document, and operator keys of a JSON body
    beyond the pairs kept. A form body is not read: its pairs are in ``params``.

    >>> for s in own_signals([("user[$ne]", "x"), ("next", "http://127.1/")], "", ""):
    ...     print(s.rule_id, s.subkind, s.severity, s.variable, s.name, s.matched)
    990300 nosqli 2 ARGS_NAMES user[$ne] $ne
    990500 ssrf 2 ARGS next http://127.1
    990504 ssrf 2 ARGS next http://127.1
    >>> own_signals([("q", "men's shoes"), ("price", "$19.99"), ("q", "{")], "", "")
    []
    """
    found: dict[int, Signal] = {}
    for name, value in params:
        if _NAME_PRECHECK.search(name) is not None:
            _scan(name, "ARGS_NAMES", name, _NAME_GROUPS, found)
        if _VALUE_PRECHECK.search(value) is not None:
            _scan(value, "ARGS", name, _VALUE_GROUPS, found)
        if "/" in value or "\\" in value:
            _scan_urls(value, name, found)
    if body and "x-www-form-urlencoded" not in content_type.lower():
        _scan_body(body[:BODY_SCAN], content_type, found)
    return [found[rule_id] for rule_id in sorted(found)]


def _scan(
    text: str, variable: str, name: str, groups: tuple[_Group, ...], found: dict[int, Signal]
) -> None:
    for gate, signatures in groups:
        if gate.search(text) is None:
            continue
        for signature in signatures:
            if signature.rule_id in found:
                continue
            for rx in signature.patterns:
                if rx.needles and not _holds(text, rx.needles):
                    continue
                match = rx.pattern.search(text)
                if match is not None:
                    token = match.groupdict().get("token") or match.group(0)
                    found[signature.rule_id] = _signal(signature, variable, name, token, text)
                    break


def _holds(text: str, needles: tuple[str, ...]) -> bool:
    # A loop, not any(): a generator costs more than the tests it runs here.
    for needle in needles:  # noqa: SIM110
        if needle in text:
            return True
    return False


def _scan_body(body: str, content_type: str, found: dict[int, Signal]) -> None:
    if "json" in content_type.lower() or body[:64].lstrip()[:1] in ("{", "["):
        start = body.find('"$')
        if start >= 0:
            _scan_window(body, NOSQLI_VALUE[0], _BODY_OPERATOR, start, found)
    elif "<!" in body or "xi:include" in body or "XInclude" in body:
        for signature in XXE:
            for rx in signature.patterns:
                if _holds(body, rx.needles) and _scan_window(body, signature, rx.pattern, 0, found):
                    break


def _scan_window(
    body: str, signature: Signature, pattern: re.Pattern[str], start: int, found: dict[int, Signal]
) -> bool:
    """A body is not one value: its fragment is the part around the match."""
    if signature.rule_id in found:
        return True
    match = pattern.search(body, start)
    if match is None:
        return False
    begin = max(0, match.start() - 40)
    found[signature.rule_id] = _signal(
        signature, "REQUEST_BODY", "", match.group(0), body[begin : begin + FRAGMENT_MAX]
    )
    return True


def _scan_urls(value: str, name: str, found: dict[int, Signal]) -> None:
    relative = _RELATIVE.match(value)
    if relative is not None:  # "//127.0.0.1/admin", or "\\host\share" to a Windows server
        _judge_host(
            relative.group(1), "", token=relative.group(0), value=value, name=name, found=found
        )
    for number, url in enumerate(_AUTHORITY.finditer(value)):
        if number == MAX_URLS:
            break
        colon = url.start()
        scheme_match = _SCHEME.search(value, max(0, colon - 16), colon)
        if scheme_match is None:
            continue
        before = scheme_match.start()
        if before and _SCHEME_CHAR.match(value, before - 1):
            continue  # part of a longer word, not a scheme
        scheme = scheme_match.group(0).lower()
        token = value[before : url.end()]
        # "${jndi:ldap://...}" is a lookup string, not a URL a parameter names.
        if scheme in _FETCH_SCHEMES and not (before and value[before - 1] == ":"):
            _add(found, SSRF_SCHEME, name, token, value)
        if scheme == "file" or (len(url.group(1)) == 1 and scheme not in _WEB_SCHEMES):
            continue
        _judge_host(url.group(2), scheme, token=token, value=value, name=name, found=found)


def _judge_host(
    authority: str, scheme: str, *, token: str, value: str, name: str, found: dict[int, Signal]
) -> None:
    for host, disguised, userinfo in _hosts(authority):
        judged = _host_class(host)
        signature = judged.signature
        if userinfo and not judged.address:
            continue  # a user name, not a host a lax parser could read
        # An app's deep link (shopapp://cart) names no host: only a network scheme's
        # dotless name is an intranet host.
        if (
            signature is SSRF_PRIVATE
            and not judged.address
            and "." not in host
            and scheme not in _NETWORK_SCHEMES
        ):
            continue
        # RFC 8252: a native app's OAuth redirect URI is a loopback address, by design.
        if signature is SSRF_LOOPBACK and not judged.encoded and "redirect_uri" in name.lower():
            continue
        if signature is not None:
            _add(found, signature, name, token, value)
        if judged.encoded or (disguised and judged.address):
            _add(found, SSRF_ENCODED if signature else SSRF_ENCODED_PUBLIC, name, token, value)


_NETWORK_SCHEMES = _WEB_SCHEMES | _FETCH_SCHEMES


def _add(found: dict[int, Signal], signature: Signature, name: str, token: str, value: str) -> None:
    if signature.rule_id not in found:
        found[signature.rule_id] = _signal(signature, "ARGS", name, token.strip(), value)


def _hosts(authority: str) -> list[tuple[str, bool, bool]]:
    """The host a URL names, and the one a lax parser reads before an ``@``
    (``http://127.0.0.1:80@evil.example``): each with whether it was disguised (still
    percent-encoded, or in look-alike characters such as ``①②⑦``) and whether it is
    that user-name part."""
    escaped = "%" in authority
    if escaped:
        authority = unquote(authority)
    if "@" not in authority:
        return [(*_bare(authority, escaped), False)] if authority else []
    user, _, host = authority.rpartition("@")
    hosts = ((host, False), (user.partition(":")[0], True))
    return [(*_bare(h, escaped), userinfo) for h, userinfo in hosts if h]


def _bare(host: str, disguised: bool) -> tuple[str, bool]:
    if host.startswith("["):
        return (host[: host.find("]") + 1] if "]" in host else host), disguised
    name, colon, port = host.rpartition(":")
    if colon and (not port or port.isdigit()):
        host = name
    if not host.isascii():
        host, disguised = unicodedata.normalize("NFKC", host.translate(_DOTS)), True
    return host.rstrip(".").lower(), disguised


class _Host(NamedTuple):
    signature: Signature | None  # None: a public host
    address: bool  # an IP address, not a name
    encoded: bool  # an address in a form other than its canonical one


_PUBLIC_NAME = _Host(None, address=False, encoded=False)


@lru_cache(maxsize=4096)  # hosts repeat (a shop's own redirect targets): bounded memo
def _host_class(host: str) -> _Host:
    """The rule a host falls under, and whether it is an IP address, in disguise."""
    if _PLAIN_NAME.fullmatch(host):  # most hosts: no digits to read an address from
        return _name_class(host)
    if host.startswith("["):
        return _v6_class(host.strip("[]").partition("%")[0])
    if _NUMERIC_HOST.fullmatch(host):
        try:
            packed = socket.inet_aton(host)
        except OSError:
            return _PUBLIC_NAME
        number = int.from_bytes(packed, "big")
        return _Host(_v4_class(number), True, socket.inet_ntoa(packed) != host)
    for embedded in _EMBEDDED_IP.finditer(host):  # wildcard DNS: 127.0.0.1.nip.io
        octets = [int(part) for part in embedded.groups()]
        if max(octets) < 256:
            inner = _v4_class(int.from_bytes(bytes(octets), "big"))
            if inner is not None:
                return _Host(inner, address=True, encoded=True)
    return _name_class(host)


def _name_class(host: str) -> _Host:
    if host in _LOOPBACK_NAMES or host.endswith(_LOOPBACK_SUFFIXES):
        return _Host(SSRF_LOOPBACK, address=False, encoded=False)
    if host in _METADATA_NAMES:
        return _Host(SSRF_METADATA, address=False, encoded=False)
    if host.endswith(_INTERNAL_SUFFIXES) or _LABEL.fullmatch(host):
        return _Host(SSRF_PRIVATE, address=False, encoded=False)
    return _PUBLIC_NAME


def _v4_class(number: int) -> Signature | None:
    first, second = number >> 24, (number >> 16) & 0xFF
    if first in (0, 127):
        return SSRF_LOOPBACK  # 0.0.0.0/8 reaches the local host on Linux
    if (first == 169 and second == 254) or number in _METADATA_V4:
        return SSRF_METADATA
    if (
        first == 10
        or (first == 172 and 16 <= second <= 31)
        or (first == 192 and second == 168)
        or (first == 100 and 64 <= second <= 127)  # carrier-grade NAT, cloud internals
    ):
        return SSRF_PRIVATE
    return None


def _v6_class(text: str) -> _Host:
    try:
        address = IPv6Address(text)
    except ValueError:
        return _PUBLIC_NAME
    number = int(address)
    if address.ipv4_mapped is not None:  # ::ffff:127.0.0.1
        return _Host(_v4_class(number & 0xFFFFFFFF), address=True, encoded=True)
    if number >> 32 == 0 and number > 1:  # ::7f00:1, the deprecated IPv4-compatible form
        return _Host(_v4_class(number), address=True, encoded=True)
    signature = None
    if address.is_loopback or address.is_unspecified:
        signature = SSRF_LOOPBACK
    elif address == _METADATA_V6 or address.is_link_local:
        signature = SSRF_METADATA
    elif address.is_site_local or number >> 121 == 0x7E:  # fec0::/10, fc00::/7
        signature = SSRF_PRIVATE
    return _Host(signature, address=True, encoded=False)


def _signal(signature: Signature, variable: str, name: str, token: str, fragment: str) -> Signal:
    return Signal(
        rule_id=signature.rule_id,
        kind="injection",
        subkind=signature.subkind,
        severity=signature.severity,
        variable=variable,
        name=name,
        matched=token[:FRAGMENT_MAX],
        fragment=fragment[:FRAGMENT_MAX],
        paranoia_level=1,
    )
