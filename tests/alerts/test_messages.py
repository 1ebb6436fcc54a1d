"""Messages: what each format says (numbers, masked evidence, link, query), escaping of
attacker-written text, masking, and the length cap."""

from __future__ import annotations

import re
import shlex
from typing import get_args

import pytest

from alerts.messages import MAX_BODY, Format, mask, mask_text, render, reproduce
from alerts.model import Alert, NoticeReason
from gatewatch.finding import KINDS, EntityType, Finding, Severity
from tests.alerts.test_grouping import make_finding

FORMATS: tuple[Format, ...] = get_args(Format)
UUID = "3f2a9c1e-5b7d-4c1e-9a0b-1c2d3e4f5a6b"


def alert_of(*findings: Finding, risk: float = 132.0) -> Alert:
    """An open alert holding ``findings``, as the manager would build it."""
    first = findings[0]
    alert = Alert.empty(first.entity_type, first.entity)
    for finding in findings:
        alert.absorb(finding, new=True, ts=finding.last_ts, max_findings=50)
    alert.id, alert.version, alert.risk, alert.opened_ts = "a-0123456789abcdef0123", 3, risk, 0
    return alert


STUFFING = make_finding(
    "f-stuff",
    t=240,
    detected=0,
    summary="203.0.113.9: 212 failed logins for 198 accounts in 240 s (ratio 0.99)",
    evidence=(UUID, "9b1d0c2e-0000-4000-8000-000000000001"),
)
TAKEOVER = make_finding(
    "f-ato",
    severity=Severity.CRITICAL,
    t=300,
    subkind="account_takeover",
    summary="'jane.doe@example.com' logged in from 203.0.113.9 right after 212 failed logins",
    evidence=("c0ffee00-1111-4222-8333-444455556666",),
    mitre="T1110.004",
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_message_says_what_how_bad_since_when_and_where_to_look(fmt: Format) -> None:
    title, body = render(alert_of(STUFFING, TAKEOVER), NoticeReason.ESCALATED, fmt)

    assert title == (
        "[CRITICAL] Gatewatch: credential_stuffing, account_takeover — ip 203.0.113.9 (escalated)"
    )
    plain = body.replace("\\", "")  # markdown escapes
    assert "Risk 132.0" in plain
    assert "2 findings (credential_stuffing 2)" in plain
    assert "a-0123456789abcdef0123 v3" in plain
    assert "First seen 2024-03-12T07:59:00.000Z" in plain  # detected at 0, 60 s of evidence
    assert "last seen 2024-03-12T08:05:00.000Z" in plain
    assert "212 failed logins for 198 accounts in 240 s (ratio 0.99)" in plain
    assert "j…@example.com" in plain and "jane.doe" not in plain
    for masked in ("3f2a9c…", "9b1d0c…", "c0ffee…"):
        assert masked in plain
    assert UUID not in plain
    assert "API2:2023" in plain and "T1110.004" in plain
    assert "http://127.0.0.1:8080/actors/ip/203.0.113.9" in body
    assert "gatewatch query actor --ip 203.0.113.9 --since 2024-03-12T07:59:00.000Z" in body


def test_the_latest_finding_evidence_comes_first_at_most_five() -> None:
    many = make_finding("f-many", "bola", evidence=tuple(f"req-{i:02d}" for i in range(20)))
    _, body = render(alert_of(STUFFING, many), NoticeReason.OPENED, "text")
    assert "Evidence (request ids): req-00, req-01, req-02, req-03, req-04, …" in body


def test_html_escapes_every_attacker_written_string() -> None:
    user = "<script>alert(1)</script>"
    finding = make_finding(
        "f-ato",
        severity=Severity.CRITICAL,
        entity=user,
        entity_type=EntityType.USER,
        subkind="account_takeover",
        summary=f"'{user}' logged in from 203.0.113.9 <b>right after</b> 212 failed logins",
        evidence=('"><img src=x onerror=alert(1)>',),
    )
    title, body = render(alert_of(finding), NoticeReason.OPENED, "html")
    assert "<script>" not in body and "<img" not in body and "<b>right" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "/actors/user/%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in body
    assert "--user &#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27;" in body  # shell-quoted
    # plain text, the actor masked: a channel escapes the title for its medium
    assert title == "[CRITICAL] Gatewatch: account_takeover — user <scrip… (opened)"


def test_markdown_escapes_what_could_restyle_or_forge_a_chat_message() -> None:
    finding = make_finding(
        "f-1",
        summary="'*admin*' [click](http://evil.example) <!channel> `rm` _x_ ~y~ | z",
        evidence=("a`b`c",),
    )
    _, body = render(alert_of(finding), NoticeReason.OPENED, "markdown")
    assert (
        r"'\*admin\*' \[click\](http://evil.example) &lt;!channel&gt; \`rm\` \_x\_ \~y\~ \| z"
        in body
    )
    assert r"Evidence (request ids): a\`b\`c" in body  # no code span to break out of
    assert "[Actor page](http://127.0.0.1:8080/actors/ip/203.0.113.9)" in body


def test_text_drops_control_characters_so_no_line_is_forged() -> None:
    finding = make_finding(
        "f-1",
        entity="eve\nRisk 0.0 · all clear",
        entity_type=EntityType.USER,
        summary="eve\r\nALL CLEAR\x07",
    )
    title, body = render(alert_of(finding), NoticeReason.OPENED, "text")
    assert "\nRisk 0.0" not in body and "\nALL CLEAR" not in body and "\x07" not in body
    assert "\n" not in title


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_body_stays_under_the_cap_by_dropping_whole_items(fmt: Format) -> None:
    words = "alpha " * 600
    findings = [
        make_finding(f"f-{kind}", kind, entity="x" * 256, entity_type=EntityType.USER,
                     summary=f"<{words}>", evidence=("r1", "r2"))
        for kind in sorted(KINDS)
    ]  # fmt: skip
    _, body = render(alert_of(*findings), NoticeReason.UPDATED, fmt)
    assert len(body) <= MAX_BODY
    assert "more kinds: see the dashboard" in body
    assert {match.group(0) for match in re.finditer(r"\w+…", body)} <= {"alpha…", "xxxxxx…"}
    assert "/actors/user/" + "x" * 256 in body  # the link is whole


def test_an_absurd_actor_drops_the_link_not_the_cap() -> None:
    finding = make_finding("f-1", entity="𝔁" * 256, entity_type=EntityType.USER)
    for fmt in FORMATS:
        _, body = render(alert_of(finding), NoticeReason.OPENED, fmt)
        assert len(body) <= MAX_BODY
        assert "search the dashboard" in body


@pytest.mark.parametrize(
    ("actor_type", "actor", "command"),
    [
        (EntityType.IP, "203.0.113.9", "gatewatch query actor --ip 203.0.113.9"),
        (EntityType.USER, "alice", "gatewatch query actor --user alice"),
        (EntityType.USER, "o'brien; rm -rf ~",
         "gatewatch query actor --user 'o'\"'\"'brien; rm -rf ~'"),
        (EntityType.USER, "--json", "gatewatch query actor --user=--json"),
        (EntityType.API_KEY, "fp:0123456789abcdef",
         "gatewatch query actor --api-key fp:0123456789abcdef"),
        (EntityType.ROUTE, "/api/v1/orders/{id}",
         "gatewatch query findings --entity '/api/v1/orders/{id}'"),
    ],
)  # fmt: skip
def test_the_query_uses_the_cli_flag_of_the_actor_type_shell_quoted(
    actor_type: EntityType, actor: str, command: str
) -> None:
    alert = alert_of(make_finding(entity=actor, entity_type=actor_type, t=60))
    query = reproduce(alert)
    assert query == f"{command} --since 2024-03-12T08:00:00.000Z"
    arguments = shlex.split(query)  # what the shell hands the CLI
    assert actor in arguments or any(a.endswith(f"={actor}") for a in arguments)


def test_the_link_quotes_the_actor_and_trims_the_dashboard_url() -> None:
    alert = alert_of(make_finding(entity="team/ops bot", entity_type=EntityType.USER))
    _, body = render(alert, NoticeReason.OPENED, "text", dashboard_url="https://gw.example/")
    assert "Actor page: https://gw.example/actors/user/team%2Fops%20bot" in body


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8::1", "2001:db8::1"),
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("fp:0123456789abcdef", "fp:0123…"),
        ("fp:01", "fp:01"),
        ("jane.doe@example.com", "j…@example.com"),
        ("alice", "alice"),
        ("global", "global"),
        (UUID, "3f2a9c…"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "eyJhbG…"),
        ("", ""),
    ],
)
def test_mask_shows_addresses_and_cuts_keys_tokens_and_emails(value: str, shown: str) -> None:
    assert mask(value) == shown


def test_mask_text_masks_secrets_inside_a_sentence() -> None:
    text = (
        "key fp:0123456789abcdef used from 5 addresses by bob@example.com with "
        "Bearer abcdefghijklmnop and eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln on 203.0.113.9"
    )
    assert mask_text(text) == (
        "key fp:0123… used from 5 addresses by b…@example.com with Bearer… and eyJhbG… on "
        "203.0.113.9"
    )


def test_the_global_actor_reads_as_all_traffic() -> None:
    finding = make_finding("f-1", entity="global", entity_type=EntityType.GLOBAL)
    title, body = render(alert_of(finding), NoticeReason.OPENED, "text")
    assert title == "[HIGH] Gatewatch: credential_stuffing — all traffic (opened)"
    assert body.startswith("Opened: high alert for all traffic\n")
    assert "gatewatch query findings --entity global --since" in body


def test_a_campaign_reads_as_its_addresses_and_queries_its_kind() -> None:
    alert = alert_of(make_finding("f-1", entity="198.51.100.1"))
    alert.actor_type, alert.actor = EntityType.GLOBAL, "campaign:credential_stuffing"
    title, body = render(alert, NoticeReason.OPENED, "text")
    assert title == (
        "[HIGH] Gatewatch: credential_stuffing — a campaign from many addresses (opened)"
    )
    assert "gatewatch query findings --kind credential_stuffing --since" in body


def test_closed_and_updated_notices_say_so() -> None:
    alert = alert_of(STUFFING)
    assert render(alert, NoticeReason.CLOSED, "text")[0].endswith("(closed)")
    assert render(alert, NoticeReason.UPDATED, "markdown")[1].startswith("**Updated:** high alert")
