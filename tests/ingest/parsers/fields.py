"""The field-by-field comparison every parser test uses."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.parsers.base import RawEvent


def assert_fields(raw: RawEvent, expected: dict[str, Any]) -> None:
    """Exactly the expected keys, each with its expected value (floats approximately)."""
    actual: dict[str, Any] = dict(raw)
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert actual[key] == pytest.approx(value), key
        else:
            assert actual[key] == value, key
