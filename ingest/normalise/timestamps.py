"""Timestamps as logs write them -> epoch seconds, UTC.

Accepted: epoch numbers (seconds, milliseconds, microseconds or nanoseconds, told apart
by magnitude, as numbers or digit strings), RFC 3339 / ISO 8601 text (a missing zone
means UTC; any number of fractional digits), and the Common Log Format time used by
Apache, NGINX and API Gateway REST (``10/Oct/2000:13:55:36 -0700``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from gatewatch.errors import ParseError

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# CLF timestamps have one-second resolution, so one log repeats the same text many
# times: a small cache pays off; it is cleared wholesale to stay bounded.
_CLF_CACHE: dict[str, float] = {}
_CLF_CACHE_MAX = 4096
_SECOND_CACHE: dict[str, float] = {}
_SCALE = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)


def parse_ts(value: Any) -> float:
    """Epoch seconds for a logged timestamp, or ``ParseError``.

    >>> parse_ts(1700000000123)
    1700000000.123
    >>> parse_ts("2023-11-14T22:13:20.5Z")
    1700000000.5
    >>> parse_ts("14/Nov/2023:23:13:20 +0100")
    1700000000.0
    """
    if isinstance(value, bool):
        raise ParseError("ts: expected a timestamp, got a boolean")
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        raise ParseError(f"ts: expected a timestamp, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ParseError("ts: empty timestamp")
    first = text[0]
    if first.isdigit() and len(text) > 2 and text[2] == "/":
        return _parse_clf(text)
    if first.isdigit() and (text.isdigit() or _is_decimal(text)):
        return _from_epoch(float(text))
    if first == "[" and text.endswith("]"):
        return parse_ts(text[1:-1])
    if len(text) >= 20 and text[-1] == "Z" and text[10] == "T" and text[19] in ".Z":
        return _parse_utc_rfc3339(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"ts: unrecognised timestamp {_short(text)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _parse_utc_rfc3339(text: str) -> float:
    """``YYYY-MM-DDTHH:MM:SS[.fff...]Z``, the commonest form, with the whole seconds
    parsed once per distinct second (lines of one second share them)."""
    whole = text[:19]
    base = _SECOND_CACHE.get(whole)
    if base is None:
        try:
            base = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise ParseError(f"ts: unrecognised timestamp {_short(text)}") from None
        if len(_SECOND_CACHE) >= _CLF_CACHE_MAX:
            _SECOND_CACHE.clear()
        _SECOND_CACHE[whole] = base
    fraction = text[20:-1]
    if not fraction:
        return base
    if not fraction.isdigit():
        raise ParseError(f"ts: unrecognised timestamp {_short(text)}")
    digits = fraction[:6]
    return base + int(digits) / _SCALE[len(digits)]


def _is_decimal(text: str) -> bool:
    whole, dot, frac = text.partition(".")
    return bool(dot) and whole.isdigit() and frac.isdigit()


def _from_epoch(number: float) -> float:
    if math.isnan(number) or number < 0:
        raise ParseError(f"ts: invalid epoch value {number!r}")
    if number >= 1e17:
        return number / 1e9
    if number >= 1e14:
        return number / 1e6
    if number >= 1e11:
        return number / 1e3
    return number


def _parse_clf(text: str) -> float:
    cached = _CLF_CACHE.get(text)
    if cached is not None:
        return cached
    # dd/Mon/yyyy:HH:MM:SS[.fff] +zzzz
    try:
        day = int(text[0:2])
        month = _MONTHS[text[3:6]]
        year = int(text[7:11])
        hour, minute = int(text[12:14]), int(text[15:17])
        second_text, _, zone = text[18:].partition(" ")
        second = float(second_text)
        offset = _zone_offset(zone)
        moment = datetime(year, month, day, hour, minute, 0, tzinfo=offset)
        result = moment.timestamp() + second
    except (ValueError, KeyError, IndexError):
        raise ParseError(f"ts: unrecognised CLF timestamp {_short(text)}") from None
    if len(_CLF_CACHE) >= _CLF_CACHE_MAX:
        _CLF_CACHE.clear()
    _CLF_CACHE[text] = result
    return result


def _zone_offset(zone: str) -> timezone:
    if not zone or zone in ("Z", "UTC", "GMT"):
        return UTC
    if len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit():
        raise ValueError(zone)
    minutes = int(zone[1:3]) * 60 + int(zone[3:5])
    return timezone(timedelta(minutes=-minutes if zone[0] == "-" else minutes))


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def format_ts(ts: float) -> str:
    """RFC 3339 text (UTC, milliseconds) for epoch seconds.

    >>> format_ts(1700000000.5)
    '2023-11-14T22:13:20.500Z'
    """
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
