"""Request paths -> route templates: ``/users/8812/orders/5`` -> ``/users/{id}/orders/{id}``.

Detectors count and group by route, so every request for the same endpoint must
carry the same template whatever ids, keys or names its path holds. Three sources of
knowledge, in order of precedence:

1. **An OpenAPI document** (optional): a path matching one of its templates gets that
   template verbatim, with the document's parameter names and the server base path.
2. **The segment classifier**: a segment that is clearly a value becomes a typed
   placeholder - ``{id}`` (decimal digits), ``{uuid}``, ``{hex}`` (8+ hex digits with
   at least one digit), ``{email}``, ``{date}`` (``2024-05-01``, optionally with a
   time) or ``{token}`` (a JWT, or 20+ characters of base64/base64url text that mixes
   character classes randomly, unlike words, slugs or CamelCase names).
3. **Online learning**: under one parent prefix, a position that has shown more than
   ``collapse_after`` distinct literal values (user names, slugs) becomes ``{param}``
   from then on.

Decisions on odd input (``template`` never raises):

* ``""`` and ``/`` give ``/``; ``*`` (``OPTIONS *``) stays ``*``; a path without a
  leading slash is read as if it had one; a query string passed by mistake is dropped.
* Trailing and doubled slashes are kept (``/users/5/`` -> ``/users/{id}/``,
  ``//admin`` -> ``//admin``): servers often route them differently, and a doubled
  slash is itself a probing signal, so hiding it would lose evidence.
* Literal segments are kept as logged (percent-encoding and non-ASCII included); the
  classifier looks at the percent-decoded text, so ``alice%40example.com`` is an
  ``{email}``. A literal longer than 128 characters becomes ``{param}``.
* Only the first 2048 characters and 64 segments are templated; anything beyond is
  replaced by a final ``/{...}``.

Memory is bounded: the learned prefix tree holds at most ``max_templates`` nodes (when
it is full, new paths get the classifier's template and teach nothing), a collapsed
position forgets its literal values, and the path -> template cache holds at most
``cache_size`` entries. The first segment never collapses: it names the API's
top-level resources and is where scanners probe (``/wp-admin``, ``/.env``), so a scan
must not turn every route into ``/{param}/...``. Past ``max(collapse_after, 256)``
distinct first segments, new ones are templated without being learned.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import orjson

from gatewatch.errors import ConfigError

ID: Final = "{id}"
UUID: Final = "{uuid}"
HEX: Final = "{hex}"
EMAIL: Final = "{email}"
TOKEN: Final = "{token}"  # noqa: S105 - a placeholder, not a secret
DATE: Final = "{date}"
PARAM: Final = "{param}"
TAIL: Final = "{...}"

MAX_PATH_CHARS: Final = 2048
MAX_SEGMENTS: Final = 64
_MAX_LITERAL_CHARS = 128
_MIN_ROOT_LIMIT = 256
# Paths longer than this are templated but not cached: they rarely repeat, and the
# cache would otherwise hold up to cache_size * MAX_PATH_CHARS characters.
_MAX_CACHED_PATH = 512
_TOKEN_MIN_CHARS = 20
_TOKEN_SAMPLE = 256  # characters examined by the token heuristic

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_DATE_RE = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)
_HEX_RE = re.compile(r"[0-9a-fA-F]{8,}")
_EMAIL_RE = re.compile(r"[\w.!#$%&'*+=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_JWT_RE = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*", re.ASCII)
_TOKEN_CHARS_RE = re.compile(r"[\w+/=~-]+", re.ASCII)
# Natural pieces of a name: "Orders", "list", "HTTP", "2024". Words, slugs and
# CamelCase split into few long pieces; random text into many short ones.
_PIECE_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_VOWELS = frozenset("aeiouAEIOU")


def classify_segment(segment: str) -> str | None:
    """The placeholder for a path segment that is clearly a value, or ``None``.

    >>> [classify_segment(s) for s in ("8812", "3f2a9c1e7b", "2024-05-01", "users")]
    ['{id}', '{hex}', '{date}', None]
    """
    if not segment:
        return None
    if segment.isdigit():
        return ID if segment.isascii() else None
    if len(segment) < _TOKEN_MIN_CHARS and segment.isalpha():
        return None  # the common case: a word
    text = unquote(segment) if "%" in segment else segment
    if "@" in text:
        return EMAIL if _EMAIL_RE.fullmatch(text) else None
    size = len(text)
    if size < 8:
        return ID if text.isdigit() and text.isascii() else None
    if size == 36 and text[8] == "-" and _UUID_RE.fullmatch(text):
        return UUID
    if text[4] == "-" and text[:4].isdigit() and _DATE_RE.fullmatch(text):
        return DATE
    if _HEX_RE.fullmatch(text):
        # All digits is an id; all letters ("deadbeef", "facade12" aside) is a word.
        if text.isdigit():
            return ID
        return None if text.isalpha() else HEX
    if size >= _TOKEN_MIN_CHARS and _looks_like_token(text):
        return TOKEN
    return None


def _looks_like_token(text: str) -> bool:
    if text.startswith("eyJ") and text.count(".") == 2:
        return _JWT_RE.fullmatch(text) is not None
    if not _TOKEN_CHARS_RE.fullmatch(text):
        return False  # dots, spaces, non-ASCII: a file name or text, not an encoding
    sample = text[:_TOKEN_SAMPLE]
    has_lower = has_upper = has_digit = False
    letters = vowels = 0
    for char in sample:
        if char.isdigit():
            has_digit = True
        elif char.isalpha():
            letters += 1
            vowels += char in _VOWELS
            if char.islower():
                has_lower = True
            else:
                has_upper = True
    if has_lower + has_upper + has_digit < 2 or _entropy(sample) < 3.5:
        return False
    if text.endswith("=") and len(text) % 4 == 0:
        return True  # base64 padding
    pieces = _PIECE_RE.findall(sample)
    if sum(map(len, pieces)) < 2.8 * len(pieces):
        return True  # short pieces: classes alternate at random, unlike names
    # Single-case base32/base36 text: long runs, but too few vowels to be words.
    return (
        has_digit
        and not (has_lower and has_upper)
        and sample.isalnum()
        and letters >= 10
        and vowels < 0.3 * letters
    )


def _entropy(text: str) -> float:
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


class _Node:
    """A learned prefix: its literal children until it collapses, and value children
    keyed by placeholder (``{id}``, ``{param}``...)."""

    __slots__ = ("collapsed", "literals", "terminal", "values")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] | None = None
        self.values: dict[str, _Node] | None = None
        self.collapsed = False
        self.terminal = False


class _SpecNode:
    """A prefix of the OpenAPI templates."""

    __slots__ = ("literals", "param", "patterns", "template")

    def __init__(self) -> None:
        self.literals: dict[str, _SpecNode] = {}
        self.patterns: list[tuple[re.Pattern[str], _SpecNode]] = []  # "{name}.{ext}"
        self.param: _SpecNode | None = None
        self.template: str | None = None


class RouteTemplater:
    """Learns route templates from a stream of request paths (without the query).

    Not thread-safe: it learns. The same sequence of paths always yields the same
    templates.

    >>> routes = RouteTemplater(collapse_after=2)
    >>> routes.template("/users/8812/orders/5")
    '/users/{id}/orders/{id}'
    >>> routes.template("/users/alice@example.com/profile")
    '/users/{email}/profile'
    >>> [routes.template(f"/u/{name}") for name in ("ann", "bob", "cy", "ann")]
    ['/u/ann', '/u/bob', '/u/{param}', '/u/{param}']
    >>> spec = {"openapi": "3.0.3", "servers": [{"url": "https://api.example.com/v1"}],
    ...         "paths": {"/users/{userId}": {}, "/users/me": {}}}
    >>> seeded = RouteTemplater(openapi=spec)
    >>> seeded.template("/v1/users/42"), seeded.template("/v1/users/me")
    ('/v1/users/{userId}', '/v1/users/me')
    """

    def __init__(
        self,
        *,
        max_templates: int = 10_000,
        collapse_after: int = 50,
        cache_size: int = 100_000,
        openapi: Mapping[str, Any] | None = None,
    ) -> None:
        if max_templates < 1:
            raise ValueError(f"max_templates must be positive, got {max_templates}")
        if collapse_after < 2:
            raise ValueError(f"collapse_after must be at least 2, got {collapse_after}")
        if cache_size < 1:
            raise ValueError(f"cache_size must be positive, got {cache_size}")
        self.max_templates = max_templates
        self.collapse_after = collapse_after
        self.cache_size = cache_size
        self.openapi = openapi

        self._known = _load_spec(openapi, "openapi") if openapi is not None else None
        self._root_limit = max(collapse_after, _MIN_ROOT_LIMIT)
        self._root = _Node()
        self._nodes = 0  # learned nodes, the root excluded
        self._templates = 0
        # Two cache generations approximate an LRU at the cost of one dict lookup: a
        # hit in the old generation is promoted; when the new one fills, the old goes.
        self._generation = max(1, cache_size // 2)
        self._cache: dict[str, str] = {}
        self._old: dict[str, str] = {}

    @classmethod
    def from_openapi_file(
        cls,
        path: Path,
        *,
        max_templates: int = 10_000,
        collapse_after: int = 50,
        cache_size: int = 100_000,
    ) -> RouteTemplater:
        """A templater seeded from an OpenAPI 3 or Swagger 2 document.

        JSON is always read. YAML is read only when PyYAML is installed (it is a
        development dependency, not a runtime one); without it a YAML document raises
        ``ConfigError`` asking for PyYAML or a JSON copy. Any unreadable or invalid
        document raises ``ConfigError`` naming the file, the key and the reason.
        """
        document = _read_document(path)
        try:
            return cls(
                max_templates=max_templates,
                collapse_after=collapse_after,
                cache_size=cache_size,
                openapi=document,
            )
        except ConfigError as exc:
            raise ConfigError(str(path), exc.problems) from None

    def __len__(self) -> int:
        """The number of learned templates (OpenAPI templates are not counted)."""
        return self._templates

    def __bool__(self) -> bool:
        return True  # usable even before it has learned anything

    def __repr__(self) -> str:
        openapi = "None"
        if self.openapi is not None:
            paths = self.openapi.get("paths")
            count = len(paths) if isinstance(paths, Mapping) else 0
            openapi = f"<OpenAPI document, {count} paths>"
        return (
            f"RouteTemplater(max_templates={self.max_templates}, "
            f"collapse_after={self.collapse_after}, cache_size={self.cache_size}, "
            f"openapi={openapi})"
        )

    @property
    def node_count(self) -> int:
        """Learned prefix-tree nodes; never more than ``max_templates``."""
        return self._nodes

    @property
    def cached(self) -> int:
        """Paths in the cache; never more than ``cache_size``."""
        return len(self._cache) + len(self._old)

    def template(self, path: str) -> str:
        """The route template for a request path (no query string). Never raises."""
        found = self._cache.get(path)
        if found is not None:
            return found
        found = self._old.get(path)
        if found is None:
            found = self._template(path)
            if len(path) > _MAX_CACHED_PATH:
                return found
        if len(self._cache) >= self._generation:
            # With cache_size 1 the old generation would overflow it: keep none.
            self._old = self._cache if 2 * self._generation <= self.cache_size else {}
            self._cache = {}
        self._cache[path] = found
        return found

    def _template(self, path: str) -> str:
        if "?" in path:
            path = path.partition("?")[0]  # callers should strip it; a raw path has no "?"
        if not path or path == "/":
            return "/"
        if path == "*":
            return path
        truncated = len(path) > MAX_PATH_CHARS
        if truncated:
            path = path[:MAX_PATH_CHARS]
        segments = (path[1:] if path[0] == "/" else path).split("/", MAX_SEGMENTS)
        if len(segments) > MAX_SEGMENTS:
            truncated = True
            segments.pop()
        elif truncated:
            segments.pop()  # cut in the middle of a segment
        if truncated:
            return "/".join(["", *self._learn(segments, terminal=False), TAIL])
        if self._known is not None:
            known = _match(self._known, segments, 0)
            if known is not None:
                return known
        return "/" + "/".join(self._learn(segments, terminal=True))

    def _learn(self, segments: list[str], *, terminal: bool) -> list[str]:
        """Template ``segments`` and learn from them; a ``None`` node means nothing
        more can be learned on this path (tree full), only classified."""
        out: list[str] = []
        node: _Node | None = self._root
        for segment in segments:
            if node is not None and node.literals is not None:
                child = node.literals.get(segment)
                if child is not None:  # a known literal: classified when first seen
                    out.append(segment)
                    node = child
                    continue
            kind = classify_segment(segment)
            if kind is None and len(segment) > _MAX_LITERAL_CHARS:
                kind = PARAM
            if kind is None:
                if node is None:
                    out.append(segment)
                    continue
                if not node.collapsed:
                    child = self._add_literal(node, segment)
                    if not node.collapsed:
                        out.append(segment)
                        node = child
                        continue
                kind = PARAM
            out.append(kind)
            if node is not None:
                values = node.values
                child = values.get(kind) if values else None
                if child is None:
                    child = self._new_node()
                    if child is not None:
                        if values is None:
                            values = node.values = {}
                        values[kind] = child
                node = child
        if terminal and node is not None and not node.terminal:
            node.terminal = True
            self._templates += 1
        return out

    def _add_literal(self, node: _Node, segment: str) -> _Node | None:
        """A new literal child of ``node``, or ``None`` when it cannot be learned.
        Collapses ``node`` when this value is one too many."""
        literals = node.literals
        distinct = len(literals) if literals else 0
        if node is self._root:
            if distinct >= self._root_limit:
                return None
        elif distinct >= self.collapse_after:
            self._collapse(node)
            return None
        child = self._new_node()
        if child is not None:
            if literals is None:
                literals = node.literals = {}
            literals[segment] = child
        return child

    def _collapse(self, node: _Node) -> None:
        stack = list(node.literals.values()) if node.literals else []
        while stack:
            dropped = stack.pop()
            self._nodes -= 1
            self._templates -= dropped.terminal
            if dropped.literals:
                stack.extend(dropped.literals.values())
            if dropped.values:
                stack.extend(dropped.values.values())
        node.literals = None
        node.collapsed = True
        # Cached templates under this prefix are now stale; collapses are rare.
        self._cache = {}
        self._old = {}

    def _new_node(self) -> _Node | None:
        if self._nodes >= self.max_templates:
            return None
        self._nodes += 1
        return _Node()


def _match(node: _SpecNode, segments: list[str], index: int) -> str | None:
    """The OpenAPI template matching ``segments[index:]`` below ``node``; literal
    segments win over patterns, patterns over whole-segment parameters. A tree node
    sits at one depth, so backtracking visits each node at most once."""
    if index == len(segments):
        return node.template
    segment = segments[index]
    literal = node.literals.get(segment)
    if literal is not None:
        found = _match(literal, segments, index + 1)
        if found is not None:
            return found
    if not segment:
        return None  # a parameter never matches an empty segment
    for pattern, child in node.patterns:
        if pattern.fullmatch(segment):
            found = _match(child, segments, index + 1)
            if found is not None:
                return found
    if node.param is not None:
        return _match(node.param, segments, index + 1)
    return None


def _read_document(path: Path) -> Mapping[str, Any]:
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read the OpenAPI document: {exc}")]) from exc
    suffix = path.suffix.lower()
    document: Any
    if suffix in (".yaml", ".yml"):
        document = _parse_yaml(data, source)
    else:
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if suffix == ".json":
                raise ConfigError(source, [("", f"not valid JSON: {exc}")]) from exc
            document = _parse_yaml(data, source)
    if not isinstance(document, Mapping):
        raise ConfigError(source, [("", "an OpenAPI document must be a mapping")])
    return document


def _parse_yaml(data: bytes, source: str) -> Any:
    try:
        import yaml  # noqa: PLC0415 - optional: a development dependency only
    except ImportError:
        raise ConfigError(
            source, [("", "reading YAML needs PyYAML; install it or convert the document to JSON")]
        ) from None
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("", f"not valid YAML: {exc}")]) from exc


def _load_spec(document: Mapping[str, Any], source: str) -> _SpecNode:
    """The OpenAPI (3.x) or Swagger (2.0) path templates of ``document`` as a tree."""
    if "openapi" not in document and "swagger" not in document:
        raise ConfigError(source, [("", "not an OpenAPI or Swagger document")])
    problems: list[tuple[str, str]] = []
    if "swagger" in document:
        base_path = document.get("basePath", "")
        if not isinstance(base_path, str):
            problems.append(("basePath", "must be text"))
            base_path = ""
        bases = [_clean_base(base_path)]
    else:
        bases = _server_bases(document.get("servers"), "servers", problems)
    paths = document.get("paths", {})
    if not isinstance(paths, Mapping):
        raise ConfigError(source, [*problems, ("paths", "must be a mapping")])
    root = _SpecNode()
    for raw, item in paths.items():
        if isinstance(raw, str) and raw.startswith("x-"):
            continue  # a specification extension, not a path
        if not isinstance(raw, str) or not raw.startswith("/"):
            problems.append((f"paths.{raw}", "a path must start with '/'"))
            continue
        item_bases = bases
        if isinstance(item, Mapping) and "servers" in item:
            item_bases = _server_bases(item["servers"], f"paths.{raw}.servers", problems)
        for base in item_bases:
            _insert(root, base + raw)
    if problems:
        raise ConfigError(source, problems)
    return root


def _server_bases(servers: Any, key: str, problems: list[tuple[str, str]]) -> list[str]:
    if servers is None or servers == []:
        return [""]
    if not isinstance(servers, list):
        problems.append((key, "must be a list"))
        return [""]
    bases: list[str] = []
    for i, server in enumerate(servers):
        url = server.get("url") if isinstance(server, Mapping) else None
        if not isinstance(url, str):
            problems.append((f"{key}[{i}].url", "must be text"))
            continue
        variables = server.get("variables")
        if isinstance(variables, Mapping):
            for name, variable in variables.items():
                default = variable.get("default") if isinstance(variable, Mapping) else None
                if isinstance(default, str):
                    url = url.replace("{" + str(name) + "}", default)
        path = urlsplit(url).path if "//" in url else url
        base = _clean_base(path)
        if base not in bases:
            bases.append(base)
    return bases or [""]


def _clean_base(path: str) -> str:
    """``https://h/v1/`` -> ``/v1``; the root -> ``""``."""
    path = path.strip().rstrip("/")
    if path and not path.startswith("/"):
        path = "/" + path
    return path


def _insert(root: _SpecNode, template: str) -> None:
    node = root
    for segment in template[1:].split("/"):
        if segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1:
            if node.param is None:
                node.param = _SpecNode()
            node = node.param
        elif "{" in segment:
            pattern = re.compile(
                "".join(
                    "[^/]+?" if part.startswith("{") else re.escape(part)
                    for part in re.split(r"(\{[^{}]*\})", segment)
                    if part
                )
            )
            for existing, child in node.patterns:
                if existing.pattern == pattern.pattern:
                    node = child
                    break
            else:
                child = _SpecNode()
                node.patterns.append((pattern, child))
                node = child
        else:
            node = node.literals.setdefault(segment, _SpecNode())
    if node.template is None:  # the first of two equivalent templates wins
        node.template = template
