"""A learned positive model of each route's parameters: what their values look like.

For every (route, parameter name) the profile learns, online, the type of its values
(``ValueClass``: integer, decimal, UUID, hex, token, enum, e-mail, date, free text), a
length distribution and the classes of characters they carry (lowercase, digits,
quotes, angle brackets, control characters...). Once a parameter has learnt ``warmup``
values, each new value is judged against its profile, and one far outside it is a
``Deviation``: an integer id that receives ``12 OR 1=1``, a ``sort`` that receives a
value it never had, a short code that receives 800 characters, a NUL byte where there
never was one. That is parameter tampering, overflows and odd encodings, which
signatures miss because nothing in such a value is an attack on its own.

A parameter's type is the narrowest class that ``dominance`` (95%) of its non-empty
values have; an enum is a token or free-text parameter whose few most frequent values
(at most ``enum_max``, each seen twice) cover ``enum_coverage`` (75%) of them, and whose
values seen once are rarely made of those values' characters (Good-Turing: few new
values to expect). ``value_class`` tells the caller which it is: a free-text search
field is judged more leniently than an id.

Robust to what it learns from. Each value is judged first and learnt after, and a value
scored ``learn_below`` (0.5) or more is never learnt, nor are the weak deviations of a
request that had one: a flood of attacks cannot become the norm. During warm-up
everything is learnt, attacks included, so the profile needs a majority, not unanimity:
the type takes 95% of the values, the length bound is a quantile (``length_quantile``),
a character class counts once two values had it, an enum's characters and lengths are
those of its frequent values only (a recurring value with other characters is no
member unless it carries 10% of the values: ``confirm/`` beside ``confirm``), a
minority type is tolerated only once it is established (1% of the values) and free of
syntax characters, and a name stays unexpected while it is rare on its route (a
misspelt ``idA`` beside ``id``), even if it came while the route was warming up. A
few attacks among the first values thus widen the profile little, and the share of
what they left fades as normal traffic is learnt.

What a score means (the caller decides what to do with it):

* 0.75–0.95, strong: a value of another type in a typed parameter (0.85; 0.9 with
  quotes, brackets, separators or control characters; 0.75 if all its characters are
  common here and none is a syntax character), a non-member of an enum with
  characters its members never have (0.75; 0.85), control characters where there never
  were any (0.9), a value ``length_factor`` times longer than the length quantile and
  longer than ``min_long`` (0.7, +0.1 per doubling).
* 0.5–0.7: a character a narrow type (integer, decimal, UUID, hex) never had, such as a
  minus sign (0.6); a value in a parameter that is always empty (0.6).
* below 0.5, weak, and learnt (so each is reported until it is normal): new characters
  in free text (0.45 for syntax characters: quotes, brackets, separators, symbols,
  line breaks; 0.3 for letters, digits and the like), a new letter case or separator in
  a token, e-mail or date (0.45), a value of an established minority type (0.45), a new
  enum value shaped like its members (0.4, a member once seen twice), a parameter name
  never seen on a route that is otherwise warm, or carried by fewer than
  ``name_share`` (2%) of its requests since it first came (0.3).

Routes and parameters never seen during warm-up: a new route learns for ``warmup``
requests before anything on it is judged; a parameter, for ``warmup`` values. A name
first seen on a warm route is reported as unexpected (0.3) until its own profile is
warm, while it learns, and while it is rare: a new release's parameter becomes
normal, a fuzzer's one-offs never do. A name's share is counted over its route's
recent requests (halved every ``horizon`` of them).

Bounded: at most ``max_routes`` routes (the least recently active go first, idle ones
expire after ``ttl_s`` of event time) and ``max_params`` per route (a new name replaces
the least learnt parameter that is still cold, or is reported without being tracked).
Distinct values are counted for enums only while there are few (64, one-offs replaced
first). All counts halve every ``horizon`` learnt values, so a profile follows slow
change; once a parameter has learnt 1024 values it learns one ordinary value in four
(deviations always), which keeps its shares and costs less. Memory (tracemalloc): about
1.1 KB a warm parameter, 2 KB a cold one, up to 7 KB for an enum of 32 long values; the
defaults cap it near 64k parameters (~130 MB worst case; an API of 200 routes with 10
parameters each takes ~2–4 MB).

Cost of ``check`` (this machine, best of 9 loops over 20k varied requests on warm
profiles, orjson.loads of a 470-byte line measuring 1.2 us alongside): a search with
``q``, ``page`` and ``sort`` 1.8 us, one integer id 1.4 us, a 5-field form whose login,
password and e-mail are new every time 11.6 us. A value seen recently reuses its class
(a cache of 8192 short values); a new one that is not a plain number or word costs
about 1–2 us to classify. Over CSIC 2010 (2.9 values a request, most of them new)
about 7 us a request.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from detectors.state import EntityTable

_DAY = 86_400.0


class ValueClass(StrEnum):
    """What a value (or, for a profile, most of its values) looks like."""

    INTEGER = "integer"  # -?[0-9]+
    DECIMAL = "decimal"  # -?[0-9]*.[0-9]+
    UUID = "uuid"  # 8-4-4-4-12 hex digits
    HEX = "hex"  # at least 8 hex digits, one case, at least one digit
    TOKEN = "token"  # noqa: S105 - ASCII letters, digits and . - _: identifiers, names
    ENUM = "enum"  # a profile only: few distinct values, each seen repeatedly
    EMAIL = "email"
    DATE = "date"  # ISO 8601 date, optionally with a time
    FREE_TEXT = "free_text"
    EMPTY = "empty"


class DeviationKind(StrEnum):
    """Why a value is outside its profile (the reason text says it for people)."""

    TYPE = "type_mismatch"
    VALUE = "unseen_value"
    CHARACTERS = "new_characters"
    LENGTH = "too_long"
    PARAMETER = "unexpected_parameter"
    ROUTE = "unseen_route"  # ``detectors.payload.novelty``: the path, not a parameter


@dataclass(frozen=True, slots=True)
class Deviation:
    """One value outside its profile. ``value`` is cut to ``MAX_SHOWN`` characters."""

    name: str
    value: str
    reason: str
    score: float
    kind: DeviationKind


MAX_SHOWN: Final = 200

# -- character classes -------------------------------------------------------------------

_CHAR_CLASSES: tuple[tuple[str, str], ...] = (
    ("lowercase", "abcdefghijklmnopqrstuvwxyz"),
    ("uppercase", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    ("digit", "0123456789"),
    ("space", " "),
    ("dot/dash/underscore", ".-_"),
    ("comma/colon", ",:"),
    ("at sign", "@"),
    ("slash", "/"),
    ("symbol", "+=!?*#$~^"),
    ("quote", "'\"`"),
    ("angle bracket", "<>"),
    ("semicolon/pipe/ampersand", ";|&"),
    ("percent/backslash", "%\\"),
    ("bracket", "()[]{}"),
    ("line break/tab", "\t\r\n"),
    ("control character", "".join(map(chr, [*range(9), 11, 12, *range(14, 32), 127]))),
    ("non-ASCII", ""),  # every byte of a UTF-8 sequence is >= 0x80
)
LOWER, UPPER, DIGIT, SPACE, DOTDASH, COMMA, AT, SLASH = (1 << i for i in range(8))
SYMBOL, QUOTE, ANGLE, SEPARATOR, ESCAPE, BRACKET, LINEBREAK, CONTROL, NON_ASCII = (
    1 << i for i in range(8, 17)
)
_ALNUM = LOWER | UPPER | DIGIT
_DANGEROUS = QUOTE | ANGLE | SEPARATOR | ESCAPE | BRACKET | CONTROL
_SYNTAX = _DANGEROUS | SYMBOL | LINEBREAK  # meaningful to SQL, shells, HTML or URLs
_BITS: Final = tuple(1 << i for i in range(len(_CHAR_CLASSES)))
_NON_ASCII = len(_CHAR_CLASSES) - 1
# Each byte's class index (a UTF-8 byte >= 0x80 is part of a non-ASCII character).
_BYTE_INDEX: Final = bytes(
    next((i for i, (_, chars) in enumerate(_CHAR_CLASSES) if chr(b) in chars), _NON_ASCII)
    for b in range(256)
)


def char_classes(value: str) -> int:
    """The bitmask of character classes in ``value``.

    >>> describe_chars(char_classes("men's shoes"))
    'lowercase, space, quote'
    """
    if value.isascii() and value.isalnum():  # most values: one pass in C each
        if value.isdigit():
            return DIGIT
        mask = 0 if value.isalpha() else DIGIT
        if not value.isupper():
            mask |= LOWER
        if not value.islower():
            mask |= UPPER
        return mask
    mask = 0
    bits = _BITS
    for index in set(value.encode("utf-8", "surrogatepass").translate(_BYTE_INDEX)):
        mask |= bits[index]
    return mask


def describe_chars(mask: int) -> str:
    return ", ".join(name for bit, (name, _) in enumerate(_CHAR_CLASSES) if mask >> bit & 1)


# -- value classes -----------------------------------------------------------------------

_CLASSES: Final = tuple(ValueClass)
INTEGER, DECIMAL, UUID, HEX, TOKEN, ENUM, EMAIL, DATE, FREE_TEXT, EMPTY = range(10)
_COLD = -1
# A value of class v is acceptable for a parameter of class k if v is in _ACCEPTS[k].
_ACCEPTS: Final = {
    INTEGER: frozenset({INTEGER}),
    DECIMAL: frozenset({INTEGER, DECIMAL}),
    UUID: frozenset({UUID}),
    HEX: frozenset({HEX, INTEGER}),
    DATE: frozenset({DATE}),
    EMAIL: frozenset({EMAIL}),
    TOKEN: frozenset({TOKEN, INTEGER, HEX, UUID}),
}
_FITS: Final = {
    **{kind: accepts | {EMPTY} for kind, accepts in _ACCEPTS.items()},
    FREE_TEXT: frozenset(range(len(_CLASSES))),
    ENUM: frozenset({EMPTY}),  # members are accepted by name
    EMPTY: frozenset({EMPTY}),
}
_TYPED_ORDER: Final = (INTEGER, DECIMAL, UUID, HEX, DATE, EMAIL, TOKEN)  # narrowest first
_NARROW: Final = frozenset({INTEGER, DECIMAL, UUID, HEX})  # any new character is odd
_ENUM_LENGTH = 64  # longer values are never enum members (nor cached)
_SHAPES = 8192  # values whose class and characters are cached
_MATURE = 1024  # learnt values after which ordinary values are learnt one in four
_CORE_SHARE = 0.1  # an enum value this frequent is part of its core, whatever it holds

_NUMBER = re.compile(r"-?[0-9]+")
_DECIMAL_RE = re.compile(r"-?[0-9]*\.[0-9]+|-?[0-9]+\.")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_DATE_RE = re.compile(
    r"[0-9]{4}([-/])[0-9]{2}\1[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[ +-][0-9]{2}:?[0-9]{2})?)?"
)
_EMAIL_RE = re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)+")
_HEX_DIGITS = "0123456789abcdefABCDEF"


def classify(value: str, mask: int) -> int:
    """The class of one value (an index into ``ValueClass``), given its characters."""
    if not value:
        return EMPTY
    if mask == DIGIT:
        return INTEGER
    if not mask & ~(_ALNUM | DOTDASH):
        if not mask & (LOWER | UPPER):
            if _NUMBER.fullmatch(value):
                return INTEGER
            if _DECIMAL_RE.fullmatch(value):
                return DECIMAL
            if _DATE_RE.fullmatch(value):
                return DATE
        elif len(value) == 36 and _UUID_RE.fullmatch(value):
            return UUID
        if (
            len(value) >= 8
            and mask & DIGIT
            and mask & (LOWER | UPPER) != LOWER | UPPER
            and not value.strip(_HEX_DIGITS)
        ):
            return HEX
        return TOKEN
    if mask & AT and _EMAIL_RE.fullmatch(value):
        return EMAIL
    if (
        mask & DIGIT
        and not mask & ~(DIGIT | DOTDASH | COMMA | SPACE | SYMBOL | SLASH | UPPER)
        and _DATE_RE.fullmatch(value)
    ):
        return DATE
    return FREE_TEXT


def value_class_of(value: str) -> ValueClass:
    """The class of a single value.

    >>> [str(value_class_of(v)) for v in ("42", "3.5", "ab12cd34ef", "x-ray_1", "2024-03-12")]
    ['integer', 'decimal', 'hex', 'token', 'date']
    >>> [str(value_class_of(v)) for v in ("ann@example.com", "men's shoes", "")]
    ['email', 'free_text', 'empty']
    """
    return _CLASSES[classify(value, char_classes(value))]


# -- lengths -----------------------------------------------------------------------------

_LENGTH_BUCKETS = 28  # half-octaves: lengths up to 2^14, longer ones share the last


def _bucket(length: int) -> int:
    if length < 2:
        return length
    bits = length.bit_length()
    return min(_LENGTH_BUCKETS - 1, 2 * bits - 2 + ((length >> (bits - 2)) & 1))


_SHORT = 512
_BUCKET_OF: Final = tuple(_bucket(length) for length in range(_SHORT))
# The bits set in a byte of a character mask, as indices (the mask is split in two).
_BITS_LOW: Final = tuple(tuple(b for b in range(8) if m >> b & 1) for m in range(256))
_BITS_HIGH: Final = tuple(tuple(8 + b for b in range(9) if m >> b & 1) for m in range(512))


def _length_at(lengths: array[int], above: float) -> int:
    """The largest length in the bucket where more than ``above`` values are longer
    or as long (a high quantile, within a half-octave)."""
    seen = 0
    for bucket in range(_LENGTH_BUCKETS - 1, -1, -1):
        seen += lengths[bucket]
        if seen > above:
            return _bucket_top(bucket)
    return 0


def _bucket_top(bucket: int) -> int:
    """The largest length in a bucket."""
    following = bucket + 1
    if following < 2:
        return bucket
    base = 1 << (following // 2)
    return (base + (base >> 1) if following & 1 else base) - 1


# -- profiles ----------------------------------------------------------------------------


class _Param:
    """What one parameter of one route has looked like (learned state)."""

    __slots__ = (
        "chars",
        "churn",
        "classes",
        "fits",
        "hits",
        "kind",
        "known",
        "late",
        "lengths",
        "long_at",
        "members",
        "minority",
        "n",
        "since",
        "strict",
        "usual",
        "values",
    )

    def __init__(self, late: bool, since: int) -> None:
        self.n = 0
        self.hits = 0  # requests of its route that carried it (halved with the route's)
        self.since = since  # the route's request count when it first came
        self.classes = array("I", bytes(4 * len(_CLASSES)))  # values per class
        self.chars = array("I", bytes(4 * len(_CHAR_CLASSES)))  # values per character class
        self.lengths = array("I", bytes(4 * _LENGTH_BUCKETS))  # values per length bucket
        self.values: dict[str, int] | None = {}  # distinct short values while few
        self.churn = 0  # one-offs pushed out to make room
        self.members: frozenset[str] = frozenset()  # an enum's recurring values
        self.late = late  # first seen once its route was warm
        self.kind = _COLD  # derived from the counts by ParamProfiles._refresh
        self.fits: frozenset[int] = frozenset()  # classes accepted without judging
        self.known = self.strict = self.minority = 0
        self.usual = self.long_at = 0


class _Route:
    __slots__ = ("params", "seen")

    def __init__(self) -> None:
        self.params: dict[str, _Param] = {}
        self.seen = 0


_Finding = tuple[float, DeviationKind, str]


class ParamProfiles:
    """Per (route, parameter) profiles, judged then learnt by ``check``.

    >>> profiles = ParamProfiles(warmup=20)
    >>> for i in range(40):
    ...     _ = profiles.check("/items", [("id", str(100 + i * 7))], float(i))
    >>> profiles.value_class("/items", "id")
    <ValueClass.INTEGER: 'integer'>
    >>> (d,) = profiles.check("/items", [("id", "12 OR 1=1")], 41.0)
    >>> str(d.kind), d.score, d.reason
    ('type_mismatch', 0.85, 'integer expected, got free text with uppercase, space, symbol')
    >>> profiles.check("/items", [("id", "4711")], 42.0)
    []
    """

    def __init__(
        self,
        *,
        warmup: int = 64,
        max_routes: int = 1_000,
        max_params: int = 64,
        ttl_s: float = 7 * _DAY,
        dominance: float = 0.95,
        length_quantile: float = 0.95,
        length_factor: float = 4.0,
        min_long: int = 32,
        enum_max: int = 32,
        enum_coverage: float = 0.75,
        learn_below: float = 0.5,
        horizon: int = 4096,
        name_share: float = 0.02,
    ) -> None:
        if warmup < 1 or max_routes < 1 or max_params < 1 or enum_max < 1:
            raise ValueError("warmup, max_routes, max_params and enum_max must be at least 1")
        if not 0.5 < dominance <= 1 or not 0.5 < enum_coverage <= 1:
            raise ValueError("dominance and enum_coverage must be in (0.5, 1]")
        if not 0 < length_quantile < 1:
            raise ValueError("length_quantile must be in (0, 1)")
        if length_factor < 1 or min_long < 1 or ttl_s <= 0:
            raise ValueError("length_factor and min_long must be at least 1, ttl_s positive")
        if not 0 <= name_share < 1:
            raise ValueError("name_share must be in [0, 1)")
        if horizon < 2 * warmup:
            raise ValueError("horizon must be at least twice warmup: halving must keep it warm")
        self.warmup = warmup
        self.max_routes = max_routes
        self.max_params = max_params
        self.ttl_s = ttl_s
        self.dominance = dominance
        self.length_quantile = length_quantile
        self.length_factor = length_factor
        self.min_long = min_long
        self.enum_max = enum_max
        self.enum_coverage = enum_coverage
        self.learn_below = learn_below
        self.horizon = horizon
        self.name_share = name_share
        self.routes: EntityTable[str, _Route] = EntityTable(
            _Route, ttl_s=ttl_s, max_entities=max_routes
        )
        self._shapes: dict[str, tuple[int, int]] = {}  # value -> (class, chars), bounded

    def __repr__(self) -> str:
        return (
            f"ParamProfiles(warmup={self.warmup}, max_routes={self.max_routes}, "
            f"max_params={self.max_params}, ttl_s={self.ttl_s}, dominance={self.dominance}, "
            f"length_quantile={self.length_quantile}, length_factor={self.length_factor}, "
            f"min_long={self.min_long}, enum_max={self.enum_max}, "
            f"enum_coverage={self.enum_coverage}, "
            f"learn_below={self.learn_below}, horizon={self.horizon}, "
            f"name_share={self.name_share})"
        )

    # -- the hot path --------------------------------------------------------------------

    def check(self, route: str, params: Sequence[tuple[str, str]], ts: float) -> list[Deviation]:
        """Judge each value of a request against its profile, then learn the values
        that were not flagged. Returns the deviations, in the order of ``params``."""
        state = self.routes.peek(route)
        if state is None or not state.seen & 15:  # refresh its place in the LRU order
            state = self.routes.get(route, ts)
        seen = state.seen = state.seen + 1
        if not seen % self.horizon:
            _halve_shares(state)
        warm_route = seen > self.warmup
        share = self.name_share if warm_route else 0.0
        sampled = not seen & 3  # a mature parameter learns one ordinary value in four
        table = state.params
        shapes = self._shapes
        learn = self._learn
        found: list[Deviation] = []
        held: list[tuple[_Param, str, int, int]] = []  # weak deviations, learnt at the end
        hard = False
        for name, value in params:
            cls, mask = shapes.get(value) or self._shape(value)
            param = table.get(name)
            rare = False
            if param is not None:
                hits = param.hits = param.hits + 1
                rare = hits < share * (seen - param.since)
                if not rare and (
                    value in param.members
                    or (
                        cls in param.fits
                        and not mask & ~param.known
                        and len(value) <= param.long_at
                    )
                ):  # the common case: nothing to judge
                    if sampled or param.n < _MATURE:
                        learn(param, value, cls, mask)
                    continue
            else:
                param = self._add(table, name, warm_route, seen)
            deviation = self._slow(param, name, value, cls, mask, warm=warm_route, rare=rare)
            if deviation is None:
                continue
            found.append(deviation)
            if deviation.score >= self.learn_below:
                hard = True
            elif param is not None:
                held.append((param, value, cls, mask))
        if held and not hard:
            for param, value, cls, mask in held:
                learn(param, value, cls, mask)
        return found

    def _shape(self, value: str) -> tuple[int, int]:
        """The class and character classes of a value, cached when it is short."""
        mask = char_classes(value)
        shape = (classify(value, mask), mask)
        if len(value) <= _ENUM_LENGTH:
            if len(self._shapes) >= _SHAPES:
                self._shapes.clear()
            self._shapes[value] = shape
        return shape

    def _slow(
        self,
        param: _Param | None,
        name: str,
        value: str,
        cls: int,
        mask: int,
        *,
        warm: bool,
        rare: bool,
    ) -> Deviation | None:
        """A value the fast path could not accept: its name is new, untracked or rare,
        its profile cold, or it deviates. Learns it when there is nothing to report."""
        if param is None:  # the route's table is full of established names
            return _unexpected(name, value) if warm else None
        if param.kind == _COLD:
            if warm and (param.late or rare):
                return _unexpected(name, value, rare=rare)
            self._learn(param, value, cls, mask)
            return None
        judged = self._judge(param, value, cls, mask)
        if judged is None:
            if rare:
                return _unexpected(name, value, rare=True)
            self._learn(param, value, cls, mask)
            return None
        score, kind, reason = judged
        shown = value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN]
        return Deviation(name, shown, reason, score, kind)

    def _judge(self, p: _Param, value: str, cls: int, mask: int) -> _Finding | None:
        if cls == EMPTY:
            return None  # an empty value carries nothing; absence is not this model's
        kind = p.kind
        results: list[_Finding] = []
        new = mask & ~p.known
        if kind in _ACCEPTS and cls not in _ACCEPTS[kind]:
            # A value of an established minority type (1% of the values), made of
            # established characters and free of syntax, is a known exception ("all" in
            # a numeric limit, "o.neil" among logins): weak. Anything else is strong.
            odd = mask & ~p.strict | mask & _SYNTAX
            if odd:
                score = 0.9 if odd & _DANGEROUS else 0.85
            else:
                score = 0.45 if p.minority >> cls & 1 else 0.75
            detail = describe_chars(odd or mask & ~(LOWER | DIGIT) or mask)
            results.append(
                (
                    score,
                    DeviationKind.TYPE,
                    f"{_CLASSES[kind].replace('_', ' ')} expected, got "
                    f"{_CLASSES[cls].replace('_', ' ')} with {detail}",
                )
            )
        elif kind == EMPTY:
            results.append((0.6, DeviationKind.TYPE, "always empty here, got a value"))
        elif new:
            if new & CONTROL:
                score = 0.9
            elif kind == ENUM:
                score = 0.85 if new & _DANGEROUS else 0.75
            elif kind in _NARROW:
                score = 0.6
            elif kind == FREE_TEXT:
                score = 0.45 if new & _SYNTAX else 0.3
            else:  # token, e-mail, date: a letter case or separator within their alphabet
                score = 0.45
            results.append(
                (
                    score,
                    DeviationKind.CHARACTERS,
                    f"characters never seen here: {describe_chars(new)}",
                )
            )
        length = len(value)
        if length > p.long_at:
            over = length / p.long_at
            results.append(
                (
                    min(0.95, round(0.7 + 0.1 * math.log2(over), 2)),
                    DeviationKind.LENGTH,
                    f"length {length}, usually at most {p.usual}",
                )
            )
        if kind == ENUM and not results:  # new, but shaped like the members: weak
            results.append((0.4, DeviationKind.VALUE, "value never seen here"))
        if not results:
            return None
        if len(results) == 1:
            return results[0]
        results.sort(key=lambda r: -r[0])
        return results[0][0], results[0][1], "; ".join(r[2] for r in results)

    # -- learning ------------------------------------------------------------------------

    def _add(self, table: dict[str, _Param], name: str, late: bool, seen: int) -> _Param | None:
        if len(table) >= self.max_params:
            # Replace the least learnt name that is still cold (a fuzzer's one-off names);
            # established parameters are never pushed out by new ones.
            victim = min(table, key=lambda k: table[k].n)
            if table[victim].kind != _COLD:
                return None
            del table[victim]
        param = table[name] = _Param(late, seen - 1)
        param.hits = 1
        return param

    def _learn(self, p: _Param, value: str, cls: int, mask: int) -> None:
        n = p.n = p.n + 1
        p.classes[cls] += 1
        chars = p.chars
        for bit in _BITS_LOW[mask & 255]:
            chars[bit] += 1
        if mask > 255:
            for bit in _BITS_HIGH[mask >> 8]:
                chars[bit] += 1
        if mask & ~p.known and p.kind != ENUM:  # a class seen twice is known at once
            for bit in _BITS_LOW[mask & 255] + _BITS_HIGH[mask >> 8]:
                if chars[bit] >= 2:
                    p.known |= 1 << bit
        length = len(value)
        p.lengths[_BUCKET_OF[length] if length < _SHORT else _bucket(length)] += 1
        values = p.values
        if values is not None and length <= _ENUM_LENGTH:
            count = values.get(value, 0)
            if count:
                values[value] = count + 1
                if count == 1 and p.kind == ENUM and not mask & ~p.known:
                    p.members = p.members | {value}  # seen twice: a member from now on
            elif len(values) < 2 * self.enum_max:  # room for one-offs around the members
                values[value] = 1
            else:
                self._make_room(p, value)
        if n >= self.horizon:
            self._halve(p)
            self._refresh(p)
        elif n == self.warmup or (n > self.warmup and not n & (31 if n < 1024 else 255)):
            self._refresh(p)

    def _make_room(self, p: _Param, value: str) -> None:
        """Count a new value in a full table: the oldest one-off makes room for it. With
        no one-off left, the parameter has more recurring values than an enum has."""
        values = p.values
        assert values is not None
        one_off = next((v for v, count in values.items() if count == 1), None)
        if one_off is None:
            _forget_values(p)
            if p.kind == ENUM:
                self._refresh(p)
            return
        del values[one_off]
        values[value] = 1
        p.churn += 1

    def _halve(self, p: _Param) -> None:
        p.n //= 2
        p.churn //= 2
        for counts in (p.classes, p.chars, p.lengths):
            for i, count in enumerate(counts):
                counts[i] = count // 2
        if p.values is not None:
            p.values = {v: c // 2 for v, c in p.values.items() if c > 1}

    def _refresh(self, p: _Param) -> None:
        """Derive the judging thresholds from the counts (every 32 learnt values, every
        256 once a parameter has a thousand)."""
        n = p.n
        if n < self.warmup:
            p.kind = _COLD
            return
        classes = p.classes
        filled = n - classes[EMPTY]
        kind = self._type_of(classes, n, filled)
        strict_floor = max(2.0, 0.01 * filled)  # established: in 1% of the values
        known = strict = 0
        for bit, count in enumerate(p.chars):
            if count >= 2:
                known |= 1 << bit
                if count >= strict_floor:
                    strict |= 1 << bit
        p.minority = sum(1 << c for c, count in enumerate(classes) if count >= strict_floor)
        usual = _length_at(p.lengths, (1.0 - self.length_quantile) * n)
        if p.churn > n // 2:  # most values are new: an id, a name, free text
            _forget_values(p)
        p.members = frozenset()
        if kind in (TOKEN, FREE_TEXT) and p.values:
            enum = self._enum_core(p.values, filled)
            if enum is not None:
                kind = ENUM
                p.members, known, usual = enum
                strict = known
        p.kind = kind
        p.fits = _FITS[kind]
        p.known, p.strict = known, strict
        p.usual = usual
        p.long_at = max(int(self.length_factor * usual), self.min_long)

    def _type_of(self, classes: array[int], n: int, filled: int) -> int:
        """The narrowest type that ``dominance`` of the non-empty values have."""
        if filled <= (1 - self.dominance) * n:
            return EMPTY
        need = self.dominance * filled
        for candidate in _TYPED_ORDER:
            if sum(classes[c] for c in _ACCEPTS[candidate]) >= need:
                return candidate
        return FREE_TEXT

    def _enum_core(
        self, values: dict[str, int], filled: int
    ) -> tuple[frozenset[str], int, int] | None:
        """An enum's members, and its core's characters and longest value; None if the
        values are no enum.

        An enum: a few values (its core) carry most of the traffic and a new value
        shaped like them is rare. The core's characters and lengths are the profile:
        values learnt once (attacks while warming up, among others) do not shape it.
        Recurring values outside the core are accepted as they are. Good-Turing: the
        share of values seen once estimates the chance that the next value is new; only
        those made of the core's characters count.
        """
        recurring = sum(1 for count in values.values() if count > 1)
        if recurring > self.enum_max:
            return None
        shapes = self._shapes
        ranked = sorted(values.items(), key=lambda item: -item[1])
        need = self.enum_coverage * filled
        covered = longest = core_chars = 0
        large = _CORE_SHARE * filled
        for value, count in ranked:
            if covered >= need and count < large:
                break
            if count < 2:
                return None
            covered += count
            longest = max(longest, len(value))
            core_chars |= _chars_of(value, shapes)
        if covered < need:
            return None
        plausible = sum(
            1 for one, count in ranked if count == 1 and not _chars_of(one, shapes) & ~core_chars
        )
        if plausible > 0.02 * filled:
            return None
        members = (v for v, c in ranked if c >= 2 and not _chars_of(v, shapes) & ~core_chars)
        return frozenset(members), core_chars, longest

    # -- queries and housekeeping --------------------------------------------------------

    def value_class(self, route: str, name: str) -> ValueClass | None:
        """The learnt class of a parameter (``ENUM`` for a few recurring values), or
        None while it is cold or unknown."""
        state = self.routes.peek(route)
        param = None if state is None else state.params.get(name)
        if param is None or param.kind == _COLD:
            return None
        return _CLASSES[param.kind]

    def expire(self, now: float) -> int:
        """Forget routes idle for longer than ``ttl_s``; returns how many."""
        return self.routes.expire(now)

    def tracked(self) -> int:
        """Parameters profiled, over all routes."""
        return sum(len(state.params) for state in self.routes.states())


def _chars_of(value: str, shapes: dict[str, tuple[int, int]]) -> int:
    shape = shapes.get(value)
    return char_classes(value) if shape is None else shape[1]


def _forget_values(p: _Param) -> None:
    """Too many distinct values for an enum, ever: stop counting them."""
    p.values = None


def _unexpected(name: str, value: str, *, rare: bool = False) -> Deviation:
    shown = value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN]
    reason = "parameter rarely seen on this route" if rare else "parameter never seen on this route"
    return Deviation(name, shown, reason, 0.3, DeviationKind.PARAMETER)


def halve_share(hits: int, since: int, seen: int) -> tuple[int, int]:
    """A share counted over recent requests (``hits`` of the ``seen - since`` requests
    since it first came), halved: half the hits over half the span, so the share is
    the same and older requests weigh less from now on."""
    return hits // 2, seen - (seen - since) // 2


def _halve_shares(route: _Route) -> None:
    """Count a route's names over its recent requests."""
    seen = route.seen
    for param in route.params.values():
        param.hits, param.since = halve_share(param.hits, param.since, seen)
