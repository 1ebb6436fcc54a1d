"""The payload stage: what is wrong inside a request, judged in its context.

Each request is rebuilt from the log and read three ways: the OWASP Core Rule Set
behind a prefilter that passes only what a rule could flag (``inspector``), Gatewatch's
own signatures for classes CRS 3.3 misses at paranoia level 1 (``signatures``: SSTI,
XXE, NoSQL operators, CRLF, SSRF), and a learned profile of every route's parameters
(``profiles``: a value far outside what the parameter holds, such as text in an
integer id), with the top-level paths each host serves (``novelty``).

Context decides the score. A signature hit in a parameter learnt to hold an id or an
enum is worth more than the same hit in a free-text search box; a hit whose matched
text is only words ("wget tote bag", "exec chair") counts for little there, unless the
source is already scanning (it sent other flagged requests in ``scan_window_s``, or a
scanner's signature). Held-back requests of a source that turns out to be scanning join
its finding as evidence.

Findings: ``injection`` with a subkind (sqli, xss, cmdi, traversal, rfi, ssrf, ssti,
nosqli, xxe, crlf, ldap, session_fixation), ``malformed_request`` and
``oversized_payload`` from CRS's protocol rules, ``endpoint_scanning``/``probe_path``
for a path shaped like a probe for files (``paths``), and ``anomaly``/
``parameter_profile`` for profile deviations with no signature (``anomaly``/
``unseen_route`` for a top-level path the host does not serve). Each carries the rule
ids, the parameter and the decoded fragment. ``group`` says how: one finding per
request (``gatewatch detect`` by default, so every flagged request is judged on its
own) or one episode per source and subkind (streaming, so an attack is one finding that
grows).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from detectors.base import Detector, DetectorParams
from detectors.crs import API_METHODS, RULES_DIR, SETUP_FILE, CrsEngine, CrsError
from detectors.episodes import Episodes
from detectors.payload.classify import Signal, read
from detectors.payload.inspector import PayloadInspector
from detectors.payload.novelty import RouteNovelty
from detectors.payload.params import decode_component, request_params
from detectors.payload.paths import probe_path
from detectors.payload.prefilter import Prefilter
from detectors.payload.profiles import Deviation, DeviationKind, ParamProfiles, ValueClass
from detectors.payload.request import RebuiltRequest, rebuild
from detectors.payload.signatures import own_signals
from detectors.state import EntityTable
from detectors.taxonomy import TAXONOMY
from gatewatch.event import Event
from gatewatch.finding import EntityType, Severity

log = logging.getLogger(__name__)

Level = Annotated[int, Field(ge=1, le=4)]
Positive = Annotated[float, Field(gt=0)]
_FINDING_KINDS = ("injection", "malformed_request", "oversized_payload", "endpoint_scanning")
_TYPED = frozenset(
    {
        ValueClass.INTEGER,
        ValueClass.DECIMAL,
        ValueClass.UUID,
        ValueClass.HEX,
        ValueClass.TOKEN,
        ValueClass.ENUM,
        ValueClass.EMAIL,
        ValueClass.DATE,
    }
)
_IDS = frozenset(
    {ValueClass.INTEGER, ValueClass.DECIMAL, ValueClass.UUID, ValueClass.HEX, ValueClass.DATE}
)
_WORDY = frozenset({ValueClass.FREE_TEXT, ValueClass.ENUM, ValueClass.TOKEN})
_SEVERITY_SCORE = {2: 0.75, 3: 0.65, 4: 0.5, 5: 0.4}
_TYPED_IN = ("ARGS", "REQUEST_COOKIES", "REQUEST_HEADERS", "XML")  # where people write
_WORD = re.compile(r"[^\W\d_]+")  # letters only
_META = re.compile(r"[^\w\s.,-]")  # a matched text without any is only words
_HELD_MAX = 20
_RULES_MAX = 20
_SUBKIND_NAMES = {
    "sqli": "SQL injection",
    "nosqli": "NoSQL injection",
    "xss": "cross-site scripting",
    "cmdi": "command or code injection",
    "traversal": "path traversal",
    "rfi": "remote file inclusion",
    "ssrf": "server-side request forgery",
    "ssti": "template injection",
    "xxe": "XML external entity",
    "crlf": "CRLF injection",
    "ldap": "LDAP injection",
    "session_fixation": "session fixation",
    "protocol": "protocol violations",
    "argument_limits": "argument size limits",
    "parameter_profile": "values far outside their parameter's profile",
    "probe_path": "a probe for files left behind",
    "unseen_route": "a request for a path this host does not serve",
}


class RouteRules(BaseModel):
    """Per-route tuning: a stricter or looser paranoia level, rules or parameters to
    leave out (a rich-text field that legitimately holds markup)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paranoia_level: Level | None = None
    exclude_rules: frozenset[int] = frozenset()
    exclude_params: frozenset[str] = frozenset()


class PayloadParams(DetectorParams):
    crs: bool = Field(default=True, description="run the OWASP Core Rule Set")
    paranoia_level: Level = 1
    rules_dir: Path = RULES_DIR
    setup_file: Path = SETUP_FILE
    allowed_methods: frozenset[str] = Field(
        default=frozenset(API_METHODS), description="methods CRS's method policy accepts"
    )
    exclude_rules: frozenset[int] = Field(default=frozenset(), description="CRS rule ids")
    routes: dict[str, RouteRules] = Field(
        default_factory=dict, description="per route template: paranoia level, exclusions"
    )
    prefilter: bool = Field(
        default=True, description="skip CRS for requests no PL1 rule could flag"
    )
    signatures: bool = Field(default=True, description="Gatewatch's own signatures")
    profiles: bool = Field(default=True, description="learned per-parameter profiles")
    profile_warmup: Annotated[int, Field(ge=1)] = 64
    route_novelty: bool = Field(
        default=True, description="top-level paths a warm host never serves (low severity)"
    )
    route_warmup: Annotated[int, Field(ge=1)] = Field(
        default=1_000, description="requests of a host before its paths are judged"
    )
    max_routes: Annotated[int, Field(gt=0)] = 2_000
    min_score: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.5, description="a request scoring less makes no finding on its own"
    )
    anomaly_min_score: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.3,
        description="the floor for a profile deviation alone (below min_score: low severity)",
    )
    group: Literal["auto", "request", "source"] = Field(
        default="auto",
        description="a finding per request or per source; auto: per request in detect",
    )
    scan_window_s: Positive = 600.0
    scan_hits: Annotated[int, Field(ge=1)] = Field(
        default=3, description="flagged requests in the window that make a source a scanner"
    )
    verdict_cache: Annotated[int, Field(ge=0)] = 16_384
    max_sources: Annotated[int, Field(gt=0)] = 50_000
    episode_quiet_s: Positive = 600.0

    @field_validator("allowed_methods")
    @classmethod
    def _methods(cls, value: frozenset[str]) -> frozenset[str]:
        bad = sorted(m for m in value if not m.isalpha())
        if bad or not value:
            raise ValueError(f"HTTP method names, got {sorted(value)!r}")
        return frozenset(m.upper() for m in value)


class _Source:
    """What one client address sent lately: flagged requests, scanner signs."""

    __slots__ = ("flagged", "held", "scanner")

    def __init__(self) -> None:
        self.flagged: deque[float] = deque(maxlen=64)
        self.held: deque[str] = deque(maxlen=_HELD_MAX)
        self.scanner = False


@lru_cache(maxsize=4)
def _crs(
    paranoia_level: int, rules_dir: Path, setup_file: Path, methods: frozenset[str]
) -> CrsEngine:
    """One rule set per process and configuration (loading takes about a second)."""
    return CrsEngine.load(
        paranoia_level=paranoia_level,
        rules_dir=rules_dir,
        setup_file=setup_file,
        allowed_methods=sorted(methods),
    )


@lru_cache(maxsize=4)
def _prefilter(rules_dir: Path, methods: frozenset[str]) -> Prefilter:
    return Prefilter.from_rules(rules_dir, paranoia_level=1, allowed_methods=sorted(methods))


class PayloadDetector(Detector[PayloadParams]):
    name: ClassVar[str] = "payload"
    kinds: ClassVar[tuple[str, ...]] = (
        "injection",
        "malformed_request",
        "oversized_payload",
        "endpoint_scanning",
        "anomaly",
    )
    Params: ClassVar[type[DetectorParams]] = PayloadParams

    def __init__(self, params: PayloadParams, *, label: str | None = None) -> None:
        super().__init__(params, label=label)
        self.sources: EntityTable[str, _Source] = EntityTable(
            _Source, ttl_s=params.scan_window_s, max_entities=params.max_sources
        )
        self.profiles = ParamProfiles(warmup=params.profile_warmup, max_routes=params.max_routes)
        self.novelty = RouteNovelty(warmup=params.route_warmup)
        self._episodes: dict[tuple[str, str], Episodes] = {}
        self.crs_error = ""
        self._configure(params)

    def _configure(self, params: PayloadParams) -> None:
        self.inspector: PayloadInspector | None = None  # routes at PL1 (prefiltered)
        self.strict: PayloadInspector | None = None  # routes above PL1: every request
        if not params.crs:
            return
        top = max([params.paranoia_level] + [r.paranoia_level or 1 for r in params.routes.values()])
        try:
            crs = _crs(top, params.rules_dir, params.setup_file, params.allowed_methods)
            prefilter = (
                _prefilter(params.rules_dir, params.allowed_methods) if params.prefilter else None
            )
        except (CrsError, OSError) as error:
            self.crs_error = str(error)
            log.error(
                "payload signatures from the Core Rule Set are off: %s (install Debian's "
                "modsecurity-crs, or set detection.detectors.payload.crs = false)",
                error,
            )
            return
        self.inspector = PayloadInspector(crs, prefilter, cache_size=params.verdict_cache)
        if top > 1:
            self.strict = PayloadInspector(crs, None, cache_size=params.verdict_cache)

    def reconfigure(self, params: PayloadParams) -> None:
        super().reconfigure(params)
        self.sources.ttl_s, self.sources.max_entities = params.scan_window_s, params.max_sources
        for episodes in self._episodes.values():
            episodes.quiet_s = params.episode_quiet_s
        self._configure(params)

    # -- per request ------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        if not self.allow.empty and self.allow.allows(event):
            return
        p = self.params
        request = rebuild(event)
        route = p.routes.get(event.route)
        signals = self._crs_signals(request, route)
        pairs: list[tuple[str, str]] = []
        if p.signatures or p.profiles:
            pairs = request_params(event.query, event.body, request.content_type)
            if request.path_args:
                pairs.extend((name, decode_component(raw)) for name, raw in request.path_args)
        if p.signatures:
            if pairs or event.body:
                signals.extend(own_signals(pairs, event.body, request.content_type))
            probe = probe_path(event.path)
            if probe is not None:
                signals.append(probe)
        deviations = self.profiles.check(event.route, pairs, event.ts) if p.profiles else []
        if p.route_novelty:
            deviations += self.novelty.check(event.host, event.path, event.ts)
        if route is not None and route.exclude_params:
            signals = [s for s in signals if s.name not in route.exclude_params]
            deviations = [d for d in deviations if d.name not in route.exclude_params]
        if signals or deviations:
            self._judge(event, signals, deviations)

    def _crs_signals(self, request: RebuiltRequest, route: RouteRules | None) -> list[Signal]:
        level = self.params.paranoia_level
        if route is not None and route.paranoia_level is not None:
            level = route.paranoia_level
        inspector = self.strict if level > 1 and self.strict is not None else self.inspector
        if inspector is None:
            return []
        matches = inspector.inspect(request)
        if not matches:
            return []
        excluded = self.params.exclude_rules
        if route is not None:
            excluded = excluded | route.exclude_rules
        signals = [read(m) for m in matches if m.rule_id not in excluded]
        return [s for s in signals if s.paranoia_level <= level]

    def _judge(self, event: Event, signals: list[Signal], deviations: list[Deviation]) -> None:
        ip, ts = event.client_ip or "unknown", event.ts
        source = self.sources.get(ip, ts)
        if any(s.kind == "scanner" for s in signals):
            source.scanner = True
        attacks = [s for s in signals if s.kind in _FINDING_KINDS]
        if not attacks and not deviations:
            return  # a policy signal alone (a header CRS's default policy lists): context
        while source.flagged and ts - source.flagged[0] > self.params.scan_window_s:
            source.flagged.popleft()
        score, context = self._score(event.route, attacks, deviations, scanning=False)
        if score >= self.params.min_score:
            source.flagged.append(ts)  # only confident hits make a source a scanner
        scanning = source.scanner or len(source.flagged) >= self.params.scan_hits
        if scanning:
            score, context = self._score(event.route, attacks, deviations, scanning=True)
        floor = self.params.min_score if attacks else self.params.anomaly_min_score
        if score < floor:
            source.held.append(event.request_id)
            return
        held: list[str] = []
        if scanning:  # what it sent before, held back as harmless-looking, joins
            held = list(source.held)
            source.held.clear()
        self._report(
            event,
            attacks=attacks,
            deviations=deviations,
            score=score,
            context=context,
            held=held,
            flagged=len(source.flagged),
        )

    def _score(
        self,
        route: str,
        attacks: list[Signal],
        deviations: list[Deviation],
        *,
        scanning: bool,
    ) -> tuple[float, list[str]]:
        context: list[str] = []
        if not attacks:  # the profile alone
            score = max(self._deviation_score(route, d) for d in deviations)
            if scanning:
                score += 0.2
                context.append("the source is scanning")
            return min(1.0, score), context
        injection = [s for s in attacks if s.kind == "injection"]
        main = injection or attacks
        score = max(_SEVERITY_SCORE.get(s.severity, 0.5) for s in main)
        if not injection:
            score -= 0.2  # protocol violations: worth a look, rarely an attack alone
        rules = {s.rule_id for s in main}
        score += 0.1 * min(2, len(rules) - 1)
        classes = {self.profiles.value_class(route, s.name) for s in main if s.name}
        # Words alone ("wget tote bag", "echo dot") are how people search: in a
        # parameter learnt to hold words they count for little, unless the source is
        # scanning. Where nothing is learnt yet (a new route, a header), only a single
        # matched word in a plain phrase does ("if exist x cmd", "pg_catalog" count).
        only_words = all(
            s.variable.startswith(_TYPED_IN) and not _META.search(s.matched + s.fragment)
            for s in main
        )
        if classes & (_IDS if only_words else _TYPED):
            score += 0.15
            context.append("in a parameter that holds ids or fixed values")
        if any(d.kind is not DeviationKind.ROUTE for d in deviations):
            score += 0.1
            context.append("the value is far outside its parameter's profile")
        if scanning:
            score += 0.2
            context.append("the source is scanning")
        elif only_words and not classes & _IDS and (classes & _WORDY or all(map(_plain, main))):
            score *= 0.55
            context.append("only words, where words are ordinary")
        return min(1.0, score), context

    def _deviation_score(self, route: str, deviation: Deviation) -> float:
        """New characters in free text are how people write ("men's shoes"): alone,
        they say little; in an id, an enum or a token they say a lot."""
        if (
            deviation.kind is DeviationKind.CHARACTERS
            and self.profiles.value_class(route, deviation.name) is ValueClass.FREE_TEXT
        ):
            return deviation.score * 0.55
        return deviation.score

    # -- findings ---------------------------------------------------------------------

    def _report(
        self,
        event: Event,
        *,
        attacks: list[Signal],
        deviations: list[Deviation],
        score: float,
        context: list[str],
        held: list[str],
        flagged: int,
    ) -> None:
        if attacks:
            injection = [s for s in attacks if s.kind == "injection"]
            main = injection or attacks
            top = min(main, key=lambda s: (s.severity, s.rule_id))
            kind, subkind = top.kind, top.subkind
            rules = sorted({s.rule_id for s in attacks})
            where = f"{top.variable}:{top.name}" if top.name else top.variable
            fragment, what = top.fragment, f"{_SUBKIND_NAMES.get(subkind, subkind)}"
            detail = f"rule{'s' if len(rules) > 1 else ''} {', '.join(map(str, rules[:5]))}"
        else:
            worst = max(deviations, key=lambda d: d.score)
            kind, rules, fragment = "anomaly", [], worst.value
            if worst.kind is DeviationKind.ROUTE:
                subkind, where = "unseen_route", "REQUEST_FILENAME"
            else:
                subkind, where = "parameter_profile", f"ARGS:{worst.name}"
            what, detail = _SUBKIND_NAMES[subkind], worst.reason
        ip = event.client_ip or "unknown"
        target = f"{event.method} {event.route or event.path or '/'}"
        extra: dict[str, Any] = {
            "rules": rules[:_RULES_MAX],
            "where": where,
            "fragment": fragment,
            "route": event.route,
            "context": context,
        }
        if deviations:
            extra["profile"] = [f"{d.name or d.value}: {d.reason}" for d in deviations[:5]]
        severity = (  # a weak profile deviation is for the dashboard, not a pager
            Severity.LOW
            if score < self.params.min_score
            else self.params.severity or TAXONOMY[kind].severity
        )
        if self._per_request:
            self.raise_finding(
                kind=kind,
                entity_type=EntityType.IP,
                entity=ip,
                first_ts=event.ts,
                last_ts=event.ts,
                detected_ts=event.ts,
                summary=f"{ip} sent {what} to {target} ({detail}) in {where}: "
                f"{_quote(fragment)}" + (f"; {'; '.join(context)}" if context else ""),
                evidence=[*held, event.request_id],
                score=score,
                subkind=subkind,
                severity=severity,
                extra=extra,
                discriminator=event.request_id,
            )
            return
        episodes = self._episodes.get((kind, subkind))
        if episodes is None:
            episodes = self._episodes[(kind, subkind)] = Episodes(
                self, kind, EntityType.IP, quiet_s=self.params.episode_quiet_s
            )
        extra["requests"] = flagged
        episodes.report(
            ip,
            ts=event.ts,
            first_ts=event.ts,
            evidence=[*held, event.request_id],
            summary=f"{ip} sent {what} to {target} ({detail}) in {where}: {_quote(fragment)}; "
            f"{flagged} flagged requests in {self.params.scan_window_s:.0f} s",
            score=score,
            severity=severity,
            subkind=subkind,
            extra=extra,
        )

    @property
    def _per_request(self) -> bool:
        group = self.params.group
        return group == "request" or (group == "auto" and self.evidence_limit is None)

    def advance(self, watermark: float) -> None:
        self.sources.expire(watermark)
        self.profiles.expire(watermark)
        self.novelty.expire(watermark)
        for episodes in self._episodes.values():
            episodes.advance(watermark)

    def counters(self) -> dict[str, int]:
        """Requests by how CRS judged them: skipped by the prefilter, answered from
        memory, run through CRS (with the CRS runs, and the requests it flagged)."""
        totals = {"requests": 0, "prefilter_skipped": 0, "remembered": 0, "crs_runs": 0}
        totals["crs_flagged"] = 0
        for inspector in (self.inspector, self.strict):
            if inspector is not None:
                stats = inspector.stats
                totals["requests"] += stats.requests
                totals["prefilter_skipped"] += stats.skipped
                totals["remembered"] += stats.cached
                totals["crs_runs"] += stats.crs
                totals["crs_flagged"] += stats.flagged
        return totals

    def tracked(self) -> int:
        open_episodes = sum(len(e) for e in self._episodes.values())
        learnt = self.profiles.tracked() + self.novelty.tracked()
        return len(self.sources) + learnt + open_episodes


def _plain(signal: Signal) -> bool:
    """One word matched, in a phrase of plain words: how a search reads."""
    words = signal.fragment.split()
    return (
        len(words) > 1
        and _WORD.fullmatch(signal.matched.strip()) is not None
        and all(map(_WORD.fullmatch, words))
    )


def _quote(text: str, limit: int = 80) -> str:
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
