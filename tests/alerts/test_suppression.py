"""Suppressions: criteria that must all match, an expiry on an injected clock, validated
rules, rows for the store, and a thread-safe swap of the active set."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.suppression import Suppression, Suppressions
from gatewatch.finding import EntityType, Finding
from tests.alerts.test_grouping import BASE_TS, make_finding

NOW = BASE_TS  # wall clock, for these tests


def rule(*, duration_s: float = 3600.0, **criteria: str) -> Suppression:
    return Suppression.create(
        reason="pentest by Acme", created_by="ana", duration_s=duration_s, now=NOW, **criteria
    )


BOLA_ON_ORDERS = make_finding(
    "f-bola", "bola", entity="198.51.100.7", extra={"route": "/api/v1/orders/{id}"}
)
STUFFING_FROM_NET = make_finding("f-net", entity="203.0.113.0/24")
TAKEOVER = make_finding(
    "f-ato",
    entity="alice",
    entity_type=EntityType.USER,
    subkind="account_takeover",
    extra={"source_ip": "198.51.100.7"},
)
V6 = make_finding("f-v6", "injection", entity="2001:db8::7")


@pytest.mark.parametrize(
    ("criteria", "finding", "matches"),
    [
        ({"kind": "bola"}, BOLA_ON_ORDERS, True),
        ({"kind": "injection"}, BOLA_ON_ORDERS, False),
        ({"entity": "198.51.100.7"}, BOLA_ON_ORDERS, True),
        ({"entity": "198.51.100.8"}, BOLA_ON_ORDERS, False),
        ({"entity": "alice"}, TAKEOVER, True),
        ({"route": "/api/v1/orders/{id}"}, BOLA_ON_ORDERS, True),
        ({"route": "/api/v1/orders/{id}"}, STUFFING_FROM_NET, False),  # no route in extra
        ({"cidr": "198.51.100.0/24"}, BOLA_ON_ORDERS, True),
        ({"cidr": "198.51.101.0/24"}, BOLA_ON_ORDERS, False),
        ({"cidr": "203.0.0.0/16"}, STUFFING_FROM_NET, True),  # a network entity inside
        ({"cidr": "203.0.113.128/25"}, STUFFING_FROM_NET, False),  # only partly inside
        ({"cidr": "198.51.100.0/24"}, TAKEOVER, True),  # the user's login came from it
        ({"cidr": "10.0.0.0/8"}, TAKEOVER, False),
        ({"cidr": "2001:db8::/32"}, V6, True),
        ({"cidr": "0.0.0.0/0"}, V6, False),  # another address family
        ({"kind": "bola", "cidr": "198.51.100.0/24"}, BOLA_ON_ORDERS, True),
        ({"kind": "bola", "entity": "198.51.100.9"}, BOLA_ON_ORDERS, False),  # every one
    ],
)
def test_every_criterion_given_must_match(
    criteria: dict[str, str], finding: Finding, matches: bool
) -> None:
    assert (
        Suppression.create(
            reason="pentest", created_by="ana", duration_s=60, now=NOW, **criteria
        ).matches(finding, NOW + 1)
        is matches
    )


def test_a_rule_stops_matching_when_it_expires() -> None:
    silence = rule(duration_s=600, kind="bola")
    assert silence.matches(BOLA_ON_ORDERS, NOW + 599.9)
    assert not silence.matches(BOLA_ON_ORDERS, NOW + 600)


def test_the_active_set_follows_the_injected_clock() -> None:
    now = [NOW]
    short, long = rule(duration_s=60, kind="bola"), rule(duration_s=7200, entity="198.51.100.7")
    rules = Suppressions([short, long], clock=lambda: now[0])
    assert rules.match(BOLA_ON_ORDERS) == short  # the first matching rule
    assert rules.active() == [short, long]
    now[0] = NOW + 60
    assert rules.match(BOLA_ON_ORDERS) == long
    assert rules.active() == [long]
    now[0] = NOW + 7200
    assert rules.match(BOLA_ON_ORDERS) is None
    assert rules.active() == []
    assert rules.suppressed == 2


def test_replace_swaps_the_whole_set() -> None:
    rules = Suppressions([rule(kind="bola")], clock=lambda: NOW)
    assert rules.match(BOLA_ON_ORDERS) is not None
    rules.replace([rule(kind="injection")])
    assert rules.match(BOLA_ON_ORDERS) is None
    assert rules.match(V6) is not None
    rules.replace([])
    assert rules.match(V6) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reason": ""}, "reason: say why"),
        ({"reason": "   "}, "reason: say why"),
        ({"kind": "bruteforce"}, "kind: unknown finding kind 'bruteforce'"),
        ({"cidr": "198.51.100.0/33"}, "cidr: '198.51.100.0/33' is not an IP network"),
        ({"cidr": "", "kind": ""}, "criteria: at least one criterion is required"),
        ({"duration_s": 0}, "duration_s: must be a positive number"),
        ({"duration_s": float("nan")}, "duration_s: must be a positive number"),
    ],
)
def test_create_rejects_a_bad_rule_naming_the_field(changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "reason": "pentest",
        "created_by": "ana",
        "duration_s": 3600,
        "now": NOW,
        "kind": "bola",
        **changes,
    }
    with pytest.raises(ValueError, match=message):
        Suppression.create(**arguments)


def test_create_sets_the_id_and_expiry() -> None:
    made = rule(duration_s=3600, kind="bola", cidr="198.51.100.0/24")
    assert made.id.startswith("s-") and len(made.id) == 14
    assert (made.created_ts, made.expires_ts) == (NOW, NOW + 3600)
    assert made.reason == "pentest by Acme" and made.created_by == "ana"
    assert rule(kind="bola").id != rule(kind="injection").id


def test_a_rule_round_trips_through_a_store_row() -> None:
    made = rule(kind="bola", route="/api/v1/orders/{id}")
    row = made.to_row()
    assert row == {
        "id": made.id,
        "reason": "pentest by Acme",
        "created_by": "ana",
        "created_ts": NOW,
        "expires_ts": NOW + 3600,
        "kind": "bola",
        "entity": "",
        "route": "/api/v1/orders/{id}",
        "cidr": "",
    }
    stored = {**row, "deleted": False, "updated_ts": NOW}  # columns the store adds
    assert Suppression.from_row(stored) == made


def test_a_stored_rule_with_a_bad_network_never_matches_rather_than_failing() -> None:
    broken = Suppression.from_row({**rule(kind="bola").to_row(), "cidr": "nonsense"})
    assert not broken.matches(BOLA_ON_ORDERS, NOW)
