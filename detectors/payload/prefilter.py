"""Which requests the Core Rule Set could flag: the cheap test in front of it.

CRS inspects a request in about a millisecond; most API requests carry nothing a rule
looks at (``GET /api/v1/orders/1234?page=2``). The prefilter passes a request on to
CRS when any decoded name or value holds something a PL1 rule keys on:

- a metacharacter (quotes, angle brackets, ``; | & $ ( ) { } [ ] ` \\``, an encoded
  ``=``...), a control or non-ASCII character, or ``%`` left over after decoding twice;
- whitespace inside a value (a rule such as 932150 needs a command word followed by a
  space; a value without whitespace or metacharacters cannot match it);
- a phrase of the rule set's own word lists (``@pm`` and ``@pmFromFile`` data of the
  loaded rules: OS files, restricted files, shell and PowerShell commands, PHP and
  Java names, scanner signatures) or of ``RX_KEYWORDS`` below (words the regex rules
  need, for values that hold no metacharacter);
- anything unusual about the request's shape: a method outside the allowed set, a body
  on GET, a content type other than plain form, JSON or text, a path with an
  extension-like dot or a double slash.

Header values are tested the same way, except the few whose shape the protocol rules
judge (``content-type``, ``content-length``...), which are checked against their
usual form. ``bench/payloads.py`` measures what the prefilter loses against CRS alone
on the CRS regression cases.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import ahocorasick
import orjson

from detectors.payload.params import decode_component
from detectors.payload.request import RebuiltRequest
from detectors.payload.rule_words import unix_commands

# Characters no rule-free value needs. ``=`` and ``&`` only count when encoded: the
# raw separators of a query or form body are turned into spaces before decoding.
# ``: , @ +`` and letters beyond ASCII are left out: timestamps, lists, e-mail
# addresses, phone numbers and names in most languages hold them, and no PL1 rule needs
# them without one of the others or a keyword (measured on the CRS regression cases).
_TRIGGER_RE = re.compile(r"[\"'<>;|&$(){}\[\]`\\*^~!#=%?\x00-\x1f\x7f]")
_PATH_RE = re.compile(r"[\"'<>;|&$(){}\[\]`\\*^~!#=%?\s\x00-\x1f\x7f-\U0010ffff]|//|\.\.|/\.")
_EXTENSION = re.compile(r"\.[a-z0-9]+(?=/|$)")
_SPACE_RE = re.compile(r"\s")
SHAPE_HEADERS = frozenset(
    {"content-type", "content-length", "transfer-encoding", "connection", "host", "range",
     "request-range", "expect", "te", "proxy", "accept", "accept-encoding", "accept-language",
     "accept-charset", "cache-control", "pragma"}
)  # fmt: skip
_USUAL_SHAPE = re.compile(
    r"[a-z0-9*/+.;=, \-]*", re.IGNORECASE
)  # what those headers hold when nothing is wrong: tokens, types, q-values, numbers

_USUAL_HEADER = {
    "content-type": re.compile(
        r"application/(?:json|x-www-form-urlencoded)(?: *; *charset=utf-8)?", re.IGNORECASE
    ),
    "connection": re.compile(r"keep-alive|close|upgrade", re.IGNORECASE),
    "content-length": re.compile(r"\d{1,12}"),
    "host": re.compile(r"(?:[a-z0-9.\-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?", re.IGNORECASE),
    "range": re.compile("(?!)"),  # never usual: 920190 judges ranges
    "request-range": re.compile("(?!)"),
}
_NUMERIC_HOST = re.compile(r"[\d.:\[\]a-f]*\d[\d.:\[\]a-f]*", re.IGNORECASE)

# Words regex rules need even without metacharacters or whitespace (lowercase
# substrings). Ordinary words ("select", "insert", "script") are left to the tests for
# whitespace and metacharacters, which every rule that uses them also needs; each
# entry here is either needed by a CRS regression case or an attack token no ordinary
# value holds.
RX_KEYWORDS = (
    # SQL: functions, catalogues and database names that need no space or quote
    "information_schema", "sysobjects", "xp_", "sp_executesql", "waitfor", "benchmark",
    "sleep", "pg_", "dbms_", "utl_", "0x", "char", "having", "concat", "tempdb", "msdb",
    "msys", "mysql.db", "northwind", "schema_name", "table_name", "master..", "db_name",
    "4294967295", "4294967296", "2147483648", "2147483647", "2147483649", "0000012345",
    "0000023456", "e-308", "1e309", "union",
    # script without brackets
    "javascript", "vbscript", "onerror", "onload", "base64", "data:", "xmlns", "xlink",
    # files, protocols and traversal
    "..", "/.", "etc/", "proc/", "passwd", "shadow", "boot.ini", "win.ini", "system32",
    "powershell", "file:", "ftp:", "http", "php", "phtml", "phar", "zip:", "glob:",
    "expect:", "dict:", "gopher", "ldap:", "jar:", "netdoc", "ogg:", "rar:", "ssh2", "tftp",
    "169.254", "metadata", "localhost", "127.0.0.1", "0.0.0.0", "[::",  # noqa: S104
    # Java and Node
    "java", "runtime", "process", "jndi", "__proto__", "constructor", "prototype",
    "child_process", "__js_function", "_$$nd_func$$_",
    # response splitting
    "set-cookie",
)  # fmt: skip
_PM_FILE = re.compile(r'"@pmFromFile ([\w.-]+)"')
_PM_INLINE = re.compile(r'"@pm ([^"]+)"')
_RULE_PL = re.compile(r"paranoia-level/(\d)")
# Words that make a phrase an attack only with whitespace between them: SQL as
# libinjection tokenises it (942100: "case when x then y"), "x as y from" (942360) and
# Windows batch conditions (932140: "if not defined", "for /f ... do").
_SPACED_WORDS = frozenset(
    (
        "and", "or", "not", "xor", "div", "mod", "like", "rlike", "regexp", "sounds",
        "between", "in", "is", "null", "case", "when", "then", "else", "end", "union", "all",
        "select", "distinct", "from", "where", "having", "group", "order", "by", "limit",
        "offset", "as", "into", "values", "set", "exec", "execute", "declare", "begin",
        "waitfor", "delay", "procedure", "call", "exists", "collate", "escape", "if", "for",
        "do", "exist", "defined", "errorlevel", "cmdextversion", "geq", "equ", "neq", "leq",
        "gtr", "lss",
    )
)  # fmt: skip
_WORD_RE = re.compile(r"[a-z_]+")
_MEMO_MAX = 65_536
_SESSION_NAME = re.compile(r"session|^cf(?:id|token|sid)$", re.IGNORECASE)
_SQL_LEADING = re.compile(  # 942360: a statement glued to a number or symbol
    r"[\W\d]+\s*(?:alter|union|update|truncat|renam|inser|selec|delete|desc|load|create)",
    re.IGNORECASE,
)
_NODE_WORDS = (  # what 934100 looks for in a base64-decoded value
    "_$$nd_func$$_", "__js_function", "function", "eval", "fromcharcode", "constructor",
    "module.exports",
)  # fmt: skip
_BASE64 = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")


class Prefilter:
    """``suspicious(request)``: False only when no rule of the loaded set could match."""

    def __init__(
        self,
        keywords: Iterable[str],
        *,
        allowed_methods: Iterable[str],
        restricted_headers: Iterable[str] = (),
        restricted_extensions: Iterable[str] = (),
        commands: frozenset[str] | None = None,
    ) -> None:
        self._keywords = ahocorasick.Automaton()
        for word in {k.lower() for k in keywords if k.strip()}:
            self._keywords.add_word(word, word)
        self._keywords.make_automaton()
        self._methods = frozenset(m.upper() for m in allowed_methods)
        self._restricted = frozenset(h.lower() for h in restricted_headers)
        self._extensions = frozenset(e.lower() for e in restricted_extensions)
        self._commands = commands  # None: every value with whitespace is suspicious
        self._memo: dict[object, bool] = {}

    @classmethod
    def from_rules(
        cls, rules_dir: Path, *, paranoia_level: int, allowed_methods: Iterable[str]
    ) -> Prefilter:
        """Keywords: ``RX_KEYWORDS`` and every phrase the loaded rules match with
        ``@pm`` or ``@pmFromFile`` at or below ``paranoia_level``."""
        return cls(
            (*RX_KEYWORDS, *rule_phrases(rules_dir, paranoia_level)),
            allowed_methods=allowed_methods,
            restricted_headers=policy_list(rules_dir, "restricted_headers"),
            restricted_extensions=policy_list(rules_dir, "restricted_extensions"),
            commands=unix_commands(rules_dir),
        )

    def suspicious(self, request: RebuiltRequest) -> bool:
        """The request line or body, or a header describing them, holds something a
        rule could match (other headers: ``suspicious_header``)."""
        if self.suspicious_line(request):
            return True
        return any(
            name in SHAPE_HEADERS
            and name not in self._restricted
            and self.suspicious_header(name, value)
            for name, value in request.headers
        )

    def suspicious_line(self, request: RebuiltRequest) -> bool:
        """The method, path, query or body (not the headers) holds something."""
        if request.method not in self._methods:
            return True
        path, _, query = request.uri.partition("?")
        known = self._memo.get(path)
        if known is None:
            known = self._memo_put(path, self._suspicious_path(path.lower()))
        if known:
            return True
        if query:
            known = self._memo.get(query)
            if known is None:
                known = self._memo_put(query, self._suspicious_form(query))
            if known:
                return True
        if request.body:
            if request.method in ("GET", "HEAD"):
                return True
            if self._suspicious_body(request.body, request.content_type):
                return True
        return False

    def _suspicious_path(self, lowered: str) -> bool:
        if _PATH_RE.search(lowered) or self._has_keyword(lowered):
            return True
        return any(e in self._extensions for e in _EXTENSION.findall(lowered))  # 920440

    def restricted(self, name: str) -> bool:
        """A header name CRS's policy refuses (920450): judged with the headers."""
        return name in self._restricted

    def suspicious_header(self, name: str, value: str) -> bool:
        """A header value a rule could match (whitespace is ordinary in headers)."""
        key = (name, value)
        known = self._memo.get(key)
        if known is None:
            known = self._memo_put(key, self._judge_header(name, value))
        return known

    def _memo_put(self, key: object, verdict: bool) -> bool:
        # Values repeat (a client's User-Agent, ``page=2``): judged once while they do.
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[key] = verdict
        return verdict

    def _judge_header(self, name: str, value: str) -> bool:
        if not value or name in self._restricted:
            return True  # 920330, 920450
        if name in SHAPE_HEADERS:
            usual = _USUAL_HEADER.get(name, _USUAL_SHAPE)
            if usual.fullmatch(value) is None:
                return True
            if name == "host":
                return _NUMERIC_HOST.fullmatch(value) is not None  # 920350
            return "charset" in value.lower() and name != "content-type"  # 920600
        if name == "cookie":
            cookies = value.replace("; ", "&").replace(";", "&")
            return self._suspicious_form(cookies, arguments=False)
        plain = decode_component(value)
        return bool(_TRIGGER_RE.search(plain)) or self._has_keyword(plain)

    # -- parts ---------------------------------------------------------------------

    def _suspicious_form(self, text: str, *, arguments: bool = True) -> bool:
        for pair in text.split("&"):
            name, _, value = pair.partition("=")
            name = decode_component(name)
            if self._suspicious_plain(name) or self._suspicious_plain(decode_component(value)):
                return True
            if arguments and _SESSION_NAME.search(name):
                return True  # 943110/943120 relate a session id argument to the Referer
        return False

    def _suspicious_body(self, body: bytes, content_type: str) -> bool:
        kind = content_type.lower()
        text = body.decode("utf-8", "surrogateescape")
        if kind.startswith("application/json"):
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                return True
            return any(self._suspicious_value(s) for s in _json_strings(document))
        if kind.startswith("application/x-www-form-urlencoded"):
            return self._suspicious_form(text)
        return self._suspicious_value(text)

    def _suspicious_value(self, value: str) -> bool:
        return self._suspicious_plain(decode_component(value))

    def _suspicious_plain(self, plain: str) -> bool:
        if not plain:
            return False
        if _TRIGGER_RE.search(plain) or self._has_keyword(plain):
            return True
        if _SPACE_RE.search(plain) and (
            self._command_first(plain)
            or not _SPACED_WORDS.isdisjoint(_WORD_RE.findall(plain.lower()))
        ):
            return True
        return _SQL_LEADING.match(plain) is not None or self._base64_keyword(plain)

    def _command_first(self, plain: str) -> bool:
        """932150: a value that opens with a command word (after an optional path)."""
        if self._commands is None:
            return True
        first = plain.split(None, 1)
        return bool(first) and first[0].rpartition("/")[2].lower() in self._commands

    def _base64_keyword(self, value: str) -> bool:
        """934100 decodes base64 values before it looks for Node.js payloads."""
        if _BASE64.fullmatch(value) is None:
            return False
        try:
            decoded = binascii.a2b_base64(value + "==")
        except binascii.Error:
            return False
        text = decoded.decode("latin-1").lower()
        return any(word in text for word in _NODE_WORDS)

    def _has_keyword(self, text: str) -> bool:
        return next(self._keywords.iter(text.lower()), None) is not None


def rule_phrases(rules_dir: Path, paranoia_level: int) -> Iterator[str]:
    """The ``@pm`` phrases and ``@pmFromFile`` entries of rules up to a paranoia level."""
    for path in sorted(rules_dir.glob("REQUEST-*.conf")):
        for rule in path.read_text(encoding="utf-8", errors="replace").split("\nSecRule "):
            level = _RULE_PL.search(rule)
            if level is not None and int(level.group(1)) > paranoia_level:
                continue
            for inline in _PM_INLINE.findall(rule):
                yield from inline.split()
            for name in _PM_FILE.findall(rule):
                data = rules_dir / name
                if data.is_file():
                    for line in data.read_text(encoding="utf-8", errors="replace").splitlines():
                        if line.strip() and not line.startswith("#"):
                            yield line.strip()


def policy_list(rules_dir: Path, name: str) -> tuple[str, ...]:
    """A list from CRS's default policy (``tx.restricted_headers`` for 920450,
    ``tx.restricted_extensions`` for 920440), as the rules read it."""
    init = rules_dir / "REQUEST-901-INITIALIZATION.conf"
    text = init.read_text(encoding="utf-8") if init.is_file() else ""
    found = re.search(rf"tx\.{name}=([^'\"]*)", text)
    return tuple(item.strip("/") for item in found.group(1).split()) if found else ()


def _json_strings(document: object) -> Iterator[str]:
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from _json_strings(value)
    elif isinstance(document, list):
        for item in document:
            yield from _json_strings(item)
