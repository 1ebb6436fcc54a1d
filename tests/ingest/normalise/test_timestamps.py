from __future__ import annotations

from typing import Any

import pytest

from gatewatch.errors import ParseError
from ingest.normalise.timestamps import format_ts, parse_ts

T = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000, T),
        (1_700_000_000.25, T + 0.25),
        (1_700_000_000_250, T + 0.25),
        (1_700_000_000_250_000, T + 0.25),
        (1_700_000_000_250_000_000, T + 0.25),
        ("1700000000", T),
        ("1700000000.250", T + 0.25),
        ("1700000000250", T + 0.25),
        ("2023-11-14T22:13:20Z", T),
        ("2023-11-14T22:13:20.250Z", T + 0.25),
        ("2023-11-14T22:13:20.250123456Z", T + 0.250123),  # Traefik's nanoseconds
        ("2023-11-14T23:13:20+01:00", T),
        ("2023-11-14 22:13:20", T),  # no zone: UTC
        ("14/Nov/2023:22:13:20 +0000", T),
        ("14/Nov/2023:17:13:20 -0500", T),
        ("[14/Nov/2023:22:13:20 +0000]", T),
        ("14/Nov/2023:22:13:20.250 +0000", T + 0.25),
    ],
)
def test_accepted_forms(value: Any, expected: float) -> None:
    assert parse_ts(value) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "32/Nov/2023:22:13:20 +0000",
        "14/Foo/2023:22:13:20 +0000",
        True,
        [1],
        {},
        -5,
        float("nan"),
        "2023-13-45T00:00:00Z",
    ],
)
def test_rejected_forms_raise_parse_error(value: Any) -> None:
    with pytest.raises(ParseError, match="ts"):
        parse_ts(value)


def test_format_round_trip() -> None:
    assert parse_ts(format_ts(T + 0.5)) == T + 0.5
