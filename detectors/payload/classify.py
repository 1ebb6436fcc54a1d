"""What a CRS rule match means to a SOC: finding kind, subkind, and where it hit.

Attack families map to ``injection`` with a subkind (942 SQL → ``sqli``, 941 → ``xss``,
932/933/934/944 remote code and command execution → ``cmdi``, 930 → ``traversal``,
931 → ``rfi``, or ``ssrf`` when the URL points at an internal or metadata address).
The protocol families map to ``malformed_request`` (920, 921 smuggling and parameter
pollution), ``oversized_payload`` (920's argument and file size limits) and
``injection``/``crlf`` (921's response splitting and header injection). Some protocol
rules only state a site policy (a content type or header CRS's default policy does not
list, a numeric Host): they are ``policy`` signals, which add context but never make a
finding alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote_plus

from detectors.crs import RuleMatch

_SUBKIND_BY_FAMILY = {
    942: "sqli",
    941: "xss",
    932: "cmdi",
    933: "cmdi",
    934: "cmdi",
    944: "cmdi",
    930: "traversal",
    931: "rfi",
    943: "session_fixation",
}
_CRLF_RULES = frozenset({921120, 921130, 921140, 921150, 921151, 921160, 921190})
_OVERSIZED_RULES = frozenset({920360, 920370, 920380, 920390, 920400, 920410})
_POLICY_RULES = frozenset(
    {
        911100,  # method not in the site's list
        920280, 920290, 920300, 920310, 920311, 920320, 920330,  # missing or empty headers
        920340, 920350,  # body length without type, numeric Host
        920420, 920430, 920480, 920530, 920600,  # content type, HTTP version, charsets
        920450,  # a header CRS's default policy restricts (Accept-Charset...)
    }
)  # fmt: skip
_SCANNER_FAMILY = 913
_LDAP_RULE = 921200
_MATCH_RE = re.compile(r"Matched Data: (.*?) found within ([A-Z_]+)(?::([^:]*))?: (.*)", re.DOTALL)
_VARIABLE_RE = re.compile(r"(?:found within |^)([A-Z_]+)(?::([^:\s]*))?")
_INTERNAL_URL = re.compile(
    r"(?:https?|ftp|gopher|dict|file)://(?:\[?(?:127\.|10\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\."
    r"|169\.254\.|0\.0\.0\.0|::1|fd[0-9a-f]{2}:)|localhost|metadata)",
    re.IGNORECASE,
)
FRAGMENT_MAX = 200


@dataclass(frozen=True, slots=True)
class Signal:
    """One rule match, read: what kind of attack, in which variable, on what text."""

    rule_id: int
    kind: str  # injection, malformed_request, oversized_payload, policy, scanner
    subkind: str
    severity: int  # CRS's: 2 critical, 3 error, 4 warning, 5 notice
    variable: str  # ARGS, REQUEST_HEADERS, REQUEST_FILENAME...
    name: str  # the argument or header name, "" when none
    matched: str  # what the rule matched, decoded, cut to FRAGMENT_MAX
    fragment: str  # the whole value it matched in, decoded, cut to FRAGMENT_MAX
    paranoia_level: int


@lru_cache(maxsize=4096)
def read(match: RuleMatch) -> Signal:
    """The signal of one match (remembered: a cached CRS verdict repeats its matches,
    and reading one parses its message).

    >>> from detectors.crs import RuleMatch
    >>> m = RuleMatch(942100, "SQL Injection Attack Detected via libinjection",
    ...     "Matched Data: s&sos found within ARGS:id: 1' or '1'='1", 2,
    ...     ("attack-sqli", "paranoia-level/1"))
    >>> s = read(m)
    >>> s.kind, s.subkind, s.variable, s.name, s.fragment
    ('injection', 'sqli', 'ARGS', 'id', "1' or '1'='1")
    """
    rule_id, family = match.rule_id, match.family
    kind, subkind = "injection", _SUBKIND_BY_FAMILY.get(family, "")
    variable, name, matched, fragment = _where(match.data)
    if rule_id in _POLICY_RULES:
        kind, subkind = "policy", "protocol"
    elif rule_id in _OVERSIZED_RULES:
        kind, subkind = "oversized_payload", "argument_limits"
    elif rule_id in _CRLF_RULES:
        subkind = "crlf"
    elif rule_id == _LDAP_RULE:
        subkind = "ldap"
    elif family in (920, 921, 922):
        kind, subkind = "malformed_request", "protocol"
    elif family == _SCANNER_FAMILY:
        kind, subkind = "scanner", "scanner_signature"
    elif family == 931 and _INTERNAL_URL.search(fragment or matched):
        subkind = "ssrf"
    elif family == 942 and rule_id == 942290:
        subkind = "nosqli"
    elif not subkind:
        subkind = "generic"
    return Signal(
        rule_id=rule_id,
        kind=kind,
        subkind=subkind,
        severity=match.severity,
        variable=variable,
        name=name,
        matched=matched,
        fragment=fragment,
        paranoia_level=_paranoia_level(match.tags),
    )


def _where(data: str) -> tuple[str, str, str, str]:
    found = _MATCH_RE.match(data)
    if found is not None:
        matched, variable, name, value = found.groups()
        return variable, name or "", _decoded(matched), _decoded(value)
    place = _VARIABLE_RE.search(data)
    variable, name = (place.group(1), place.group(2) or "") if place else ("", "")
    return variable, name, _decoded(data), _decoded(data)


def _decoded(text: str) -> str:
    text = text.strip()
    if "%" in text:
        text = unquote_plus(text, errors="replace")
    return text[:FRAGMENT_MAX]


def _paranoia_level(tags: tuple[str, ...]) -> int:
    for tag in tags:
        if tag.startswith("paranoia-level/"):
            return int(tag.rpartition("/")[2])
    return 1
