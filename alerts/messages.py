"""Alert messages for people: a title and a body per format (chat markdown, HTML email,
plain text).

A message says what happened, how bad, since when, with the numbers that matter (the
findings' summaries carry them), and where to look next: the actor's dashboard page
and the forensic query that reproduces the evidence. Summaries, usernames and request
ids come from requests an attacker wrote, so every untrusted string is escaped for the
format and secrets are masked (``mask``); IP addresses are shown, a SOC needs them.
The link and the query carry the actor exactly: they must work. Bodies stay under
``MAX_BODY`` characters (chat limits) by dropping list items, never by cutting a word.
"""

from __future__ import annotations

import html
import ipaddress
import re
import shlex
import unicodedata
from typing import Literal, Protocol
from urllib.parse import quote

from alerts.model import Alert, NoticeReason
from gatewatch.finding import EntityType, rfc3339

Format = Literal["markdown", "html", "text"]

MAX_BODY = 3500  # Slack and Teams cut messages near 4000 characters
MAX_TITLE = 250
MAX_SUMMARY = 400
MAX_ACTOR = 100  # shown; the link and the query keep it whole
MAX_EVIDENCE = 5
ELLIPSIS = "…"

_QUERY_FLAGS = {EntityType.IP: "--ip", EntityType.USER: "--user", EntityType.API_KEY: "--api-key"}
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_FINGERPRINT = re.compile(r"\bfp:([0-9A-Za-z]{4})[0-9A-Za-z]+")
_TOKEN = re.compile(r"\beyJ[\w-]{4,}\.[\w-]+\.?[\w-]*|\b(?i:bearer)\s+[\w.~+/=-]{8,}")
# Emphasis, code, links, tables, strikethrough: what could restyle or forge a message.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


# --- masking -------------------------------------------------------------------------


def mask(value: str) -> str:
    """An identifier fit for a chat message: addresses shown, keys and tokens reduced
    to a short prefix, e-mail addresses to their first character and domain.

    >>> mask("203.0.113.9"), mask("2001:db8::/48")
    ('203.0.113.9', '2001:db8::/48')
    >>> mask("fp:0123456789abcdef"), mask("jane.doe@example.com")
    ('fp:0123…', 'j…@example.com')
    >>> mask("alice"), mask("3f2a9c1e-5b7d-4c1e-9a0b-1c2d3e4f5a6b")
    ('alice', '3f2a9c…')
    """
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        pass
    else:
        return value
    if value.startswith("fp:"):
        return value[:7] + ELLIPSIS if len(value) > 7 else value
    local, at, domain = value.rpartition("@")
    if at and local and "." in domain:
        return f"{local[0]}{ELLIPSIS}@{domain}"
    return value if len(value) <= 12 else value[:6] + ELLIPSIS


def mask_text(text: str) -> str:
    """Free text (a summary) with e-mail addresses, key fingerprints and bearer tokens
    masked, everything else as it was.

    >>> mask_text("'jane@example.com' logged in with key fp:0123456789abcdef")
    "'j…@example.com' logged in with key fp:0123…"
    """
    text = _EMAIL.sub(lambda m: f"{m.group(1)}{ELLIPSIS}@{m.group(2)}", text)
    text = _FINGERPRINT.sub(lambda m: f"fp:{m.group(1)}{ELLIPSIS}", text)
    return _TOKEN.sub(lambda m: m.group(0)[:6] + ELLIPSIS, text)


def shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word boundary.

    >>> shorten("212 failed logins for 198 accounts", 24)
    '212 failed logins for…'
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + ELLIPSIS


def _clean(text: str) -> str:
    """One line without control characters (no forged lines, headers or bells)."""
    return "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)


# --- what a message says, whatever the format -------------------------------------------


def actor_url(alert: Alert, dashboard_url: str) -> str:
    """The actor's page on the dashboard."""
    actor = quote(alert.actor, safe="")
    return f"{dashboard_url.rstrip('/')}/actors/{alert.actor_type.value}/{actor}"


def reproduce(alert: Alert) -> str:
    """The forensic query that shows the actor's requests from the alert's first event
    (shell-quoted: the actor is attacker-chosen text).

    >>> from alerts.model import Alert
    >>> alert = Alert.empty(EntityType.USER, "-rf $(id)")
    >>> alert.first_ts = 1710230400.0
    >>> print(reproduce(alert))
    gatewatch query actor --user='-rf $(id)' --since 2024-03-12T08:00:00.000Z
    """
    if alert.actor_type is EntityType.GLOBAL and alert.actor.startswith("campaign:"):
        kind = shlex.quote(alert.actor.removeprefix("campaign:"))
        return f"gatewatch query findings --kind {kind} --since {rfc3339(alert.first_ts)}"
    flag = _QUERY_FLAGS.get(alert.actor_type)
    command = f"gatewatch query actor {flag}" if flag else "gatewatch query findings --entity"
    value = shlex.quote(alert.actor)
    joined = f"{command}={value}" if alert.actor.startswith("-") else f"{command} {value}"
    return f"{joined} --since {rfc3339(alert.first_ts)}"


def _who(alert: Alert) -> str:
    """The actor as a person reads it: ``ip 203.0.113.9``, ``user j…@example.com``."""
    if alert.actor_type is EntityType.GLOBAL:
        if not alert.actor.startswith("campaign:"):
            return "all traffic"
        return "a campaign from many addresses"
    return f"{alert.actor_type.value} {mask(shorten(_clean(alert.actor), MAX_ACTOR))}"


def _headline(alert: Alert, reason: NoticeReason) -> str:
    kinds = ", ".join(alert.labels())
    severity = alert.severity.value.upper()
    return f"[{severity}] Gatewatch: {kinds} — {_who(alert)} ({reason.value})"


def _evidence(alert: Alert) -> tuple[list[str], bool]:
    """Up to ``MAX_EVIDENCE`` request ids, the latest findings first; True when there
    are more."""
    chosen: dict[str, None] = {}
    for finding in reversed(alert.latest.values()):
        for request_id in finding.evidence:
            if len(chosen) == MAX_EVIDENCE:
                return list(chosen), True
            chosen[request_id] = None
    return list(chosen), False


def _ids(alert: Alert) -> tuple[list[str], list[str]]:
    """The OWASP and MITRE ids of its findings, in the order their kinds joined."""
    owasp: dict[str, None] = {}
    mitre: dict[str, None] = {}
    for finding in alert.latest.values():
        if finding.owasp:
            owasp[finding.owasp] = None
        if finding.mitre:
            mitre[finding.mitre] = None
    return list(owasp), list(mitre)


# --- formats ---------------------------------------------------------------------------


class Markup(Protocol):
    """How one format writes the parts of a message. ``text`` escapes untrusted text;
    the other methods take text already escaped, except ``code`` (raw)."""

    separator: str

    def text(self, value: str) -> str: ...
    def strong(self, value: str) -> str: ...
    def code(self, value: str) -> str: ...
    def link(self, label: str, url: str) -> str: ...
    def paragraph(self, lines: list[str]) -> str: ...
    def items(self, items: list[str]) -> str: ...


class PlainText:
    separator = "\n\n"

    def text(self, value: str) -> str:
        return _clean(value)

    def strong(self, value: str) -> str:
        return value

    def code(self, value: str) -> str:
        return _clean(value)

    def link(self, label: str, url: str) -> str:
        return f"{label}: {url}"

    def paragraph(self, lines: list[str]) -> str:
        return "\n".join(lines)

    def items(self, items: list[str]) -> str:
        return "\n".join(f"- {item}" for item in items)


class Markdown(PlainText):
    """Chat markdown (Slack, Teams, Mattermost, Discord): specials backslash-escaped,
    ``&<>`` as entities so no ``<!channel>`` or link syntax survives."""

    def text(self, value: str) -> str:
        value = _clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return _MARKDOWN_SPECIAL.sub(r"\\\1", value)

    def strong(self, value: str) -> str:
        return f"**{value}**"

    def code(self, value: str) -> str:
        value = _clean(value)
        return f"`{value}`" if "`" not in value else self.text(value)

    def link(self, label: str, url: str) -> str:
        return f"[{label}]({url.replace('(', '%28').replace(')', '%29')})"


class Html(PlainText):
    """E-mail HTML: every untrusted string escaped."""

    separator = "\n"

    def text(self, value: str) -> str:
        return html.escape(_clean(value))

    def strong(self, value: str) -> str:
        return f"<b>{value}</b>"

    def code(self, value: str) -> str:
        return f"<code>{html.escape(_clean(value))}</code>"

    def link(self, label: str, url: str) -> str:
        return f'<a href="{html.escape(url)}">{label}</a>'

    def paragraph(self, lines: list[str]) -> str:
        return "<p>" + "<br>\n".join(lines) + "</p>"

    def items(self, items: list[str]) -> str:
        return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


MARKUPS: dict[str, Markup] = {"markdown": Markdown(), "html": Html(), "text": PlainText()}


def render(
    alert: Alert,
    reason: NoticeReason,
    fmt: Format,
    *,
    dashboard_url: str = "http://127.0.0.1:8080",
) -> tuple[str, str]:
    """(title, body) of a notice about ``alert`` in format ``fmt``. The title is plain
    text in every format (a subject line, a chat header); the body is at most
    ``MAX_BODY`` characters."""
    m = MARKUPS[fmt]
    title = shorten(_headline(alert, reason), MAX_TITLE)
    counts = ", ".join(f"{kind} {count}" for kind, count in alert.kinds.items())
    findings = "finding" if alert.finding_count == 1 else "findings"
    head = m.paragraph(
        [
            m.strong(m.text(f"{reason.value.capitalize()}:"))
            + m.text(f" {alert.severity.value} alert for {_who(alert)}"),
            m.text(
                f"Risk {alert.risk:.1f} · {alert.finding_count} {findings} ({counts})"
                f" · alert {alert.id} v{alert.version}"
            ),
            m.text(f"First seen {rfc3339(alert.first_ts)} · last seen {rfc3339(alert.last_ts)}"),
        ]
    )
    facts: list[str] = []
    ids, more = _evidence(alert)
    if ids:
        shown = ", ".join(m.code(mask(request_id)) for request_id in ids)
        facts.append(m.text("Evidence (request ids): ") + shown + (m.text(", …") if more else ""))
    owasp, mitre = _ids(alert)
    if owasp or mitre:
        facts.append(m.text(f"OWASP {', '.join(owasp) or '-'} · MITRE {', '.join(mitre) or '-'}"))
    where = m.paragraph(
        [
            m.link("Actor page", actor_url(alert, dashboard_url)),
            m.text("Reproduce: ") + m.code(reproduce(alert)),
        ]
    )
    if len(head) + len(where) > MAX_BODY // 2:  # a pathological actor: the dashboard finds it
        where = m.paragraph([m.text("The actor is too long to link here: search the dashboard.")])
    parts = [head, m.paragraph(facts), where] if facts else [head, where]
    budget = MAX_BODY - len(m.separator.join(parts)) - len(m.separator)
    parts.insert(1, _summaries(alert, m, budget))
    return title, m.separator.join(parts)


def _summaries(alert: Alert, m: Markup, budget: int) -> str:
    """Per kind the latest summary, as many as fit in ``budget`` characters, then how
    many were left out."""
    items: list[str] = []
    latest = list(alert.latest.items())
    for i, (name, finding) in enumerate(latest):
        summary = shorten(mask_text(finding.summary), MAX_SUMMARY)
        item = m.strong(m.text(name)) + m.text(f": {summary}")
        left = len(latest) - i - 1
        more = [m.text(f"… and {left} more kinds: see the dashboard")] if left else []
        if len(m.items([*items, item, *more])) > budget:
            items.append(m.text(f"… and {len(latest) - i} more kinds: see the dashboard"))
            break
        items.append(item)
    return m.items(items)
