"""CRS behind the prefilter, with memory of what it already judged.

A request is judged in two parts, each only when the prefilter finds something in it:

- its **line and body** (method, URI, body, and the headers that describe them:
  ``Host``, ``Content-Type``, ``Content-Length``, ``Accept``..., and the ``Referer``,
  which session-fixation rules relate to the arguments), run through CRS without the
  other headers;
- each **other header value** that could match a rule (a browser's ``User-Agent`` with
  its parentheses, a ``Referer``, a restricted header name), run through CRS once on a
  bare request carrying it, then remembered: header values repeat from request to
  request, so most are judged once.

The matches of both are the request's. CRS's rules look at one variable at a time
(the protocol rules that relate headers to the body see the describing headers in the
first part), so the split finds what CRS alone finds on the whole request;
``bench/payloads.py`` checks that on the CRS regression cases. Verdicts of repeated
lines and bodies (a popular search) are kept in a bounded cache too.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.crs import CrsEngine, RuleMatch
from detectors.payload.prefilter import SHAPE_HEADERS, Prefilter
from detectors.payload.request import RebuiltRequest

_NOTHING: tuple[RuleMatch, ...] = ()
# Judged alone and with the line too: session fixation (943110, 943120) relates a
# session id argument to an off-site Referer.
_WITH_THE_LINE = frozenset({"referer"})
Header = tuple[str, str]
_Plan = tuple[tuple[Header, ...], tuple[Header, ...], bool]


@dataclass(slots=True)
class InspectorStats:
    requests: int = 0
    skipped: int = 0  # nothing for CRS in it
    cached: int = 0  # every part already judged
    crs: int = 0  # CRS runs (a request may need two: its line and body, a header)
    flagged: int = 0  # requests with at least one match


class PayloadInspector:
    """``inspect(request)``: the CRS rules it matches, at a fraction of CRS's cost.

    Without a prefilter every request goes through CRS whole (routes at a paranoia
    level above the one the prefilter was proven for), still with the verdict cache.
    """

    def __init__(
        self,
        crs: CrsEngine,
        prefilter: Prefilter | None,
        *,
        cache_size: int = 16_384,
        header_cache_size: int = 65_536,
    ) -> None:
        self.crs = crs
        self.prefilter = prefilter
        self.stats = InspectorStats()
        self._cache_size = cache_size
        self._verdicts: dict[object, tuple[RuleMatch, ...]] = {}
        self._header_cache_size = header_cache_size
        self._header_verdicts: dict[Header, tuple[RuleMatch, ...]] = {}
        self._plans: dict[tuple[Header, ...], _Plan] = {}

    def inspect(self, request: RebuiltRequest) -> tuple[RuleMatch, ...]:
        stats = self.stats
        stats.requests += 1
        prefilter = self.prefilter
        if prefilter is None:
            return self._count(self._verdict(request, request, request.headers))
        plan = self._plans.get(request.headers)
        if plan is None:
            plan = self._plan(request.headers, prefilter)
        shape, suspicious_headers, odd_shape = plan
        line = odd_shape or prefilter.suspicious_line(request)
        if not line and not suspicious_headers:
            stats.skipped += 1
            return _NOTHING
        before = stats.crs
        matches: list[RuleMatch] = []
        for header in suspicious_headers:
            matches.extend(self._header_verdict(header, shape))
        if line:
            key = (request.method, request.uri, request.body, shape)
            matches.extend(self._verdict(key, request, shape))
        if stats.crs == before:
            stats.cached += 1
        return self._count(_unique(matches))

    def _plan(self, headers: tuple[Header, ...], prefilter: Prefilter) -> _Plan:
        """How a set of headers splits: those judged with the line, those judged alone
        (the ones that could match a rule), and whether the line's own are unusual.
        A client sends the same set request after request: it is worked out once."""
        shape: list[Header] = []
        alone: list[Header] = []
        odd_shape = False
        for header in headers:
            name = header[0]
            if name in SHAPE_HEADERS and not prefilter.restricted(name):
                shape.append(header)
                odd_shape = odd_shape or prefilter.suspicious_header(*header)
                continue
            if name in _WITH_THE_LINE:
                shape.append(header)
            if prefilter.suspicious_header(*header):
                alone.append(header)
        plan = (tuple(shape), tuple(alone), odd_shape)
        if len(self._plans) >= self._header_cache_size:
            self._plans.clear()
        self._plans[headers] = plan
        return plan

    def _count(self, matches: tuple[RuleMatch, ...]) -> tuple[RuleMatch, ...]:
        if matches:
            self.stats.flagged += 1
        return matches

    def _verdict(
        self, key: object, request: RebuiltRequest, headers: tuple[Header, ...]
    ) -> tuple[RuleMatch, ...]:
        known = self._verdicts.get(key)
        if known is None:
            self.stats.crs += 1
            known = tuple(self.crs.inspect(request.method, request.uri, headers, request.body))
            if len(self._verdicts) >= self._cache_size:
                del self._verdicts[next(iter(self._verdicts))]  # oldest first
            self._verdicts[key] = known
        return known

    def _header_verdict(self, header: Header, shape: tuple[Header, ...]) -> tuple[RuleMatch, ...]:
        known = self._header_verdicts.get(header)
        if known is None:
            self.stats.crs += 1
            bare = [h for h in shape if h[0] in ("host", "accept")]
            known = tuple(self.crs.inspect("GET", "/", (*bare, header)))
            if len(self._header_verdicts) >= self._header_cache_size:
                del self._header_verdicts[next(iter(self._header_verdicts))]
            self._header_verdicts[header] = known
        return known


def _unique(matches: list[RuleMatch]) -> tuple[RuleMatch, ...]:
    seen: dict[int, RuleMatch] = {}
    for match in matches:
        seen.setdefault(match.rule_id, match)
    return tuple(seen.values())
