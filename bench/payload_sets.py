"""The public payload sets of ../shared/data as canonical Events, for the payload
benchmarks. Nothing here is used by the product or its tests.

- ``crs_regression``: the OWASP CRS go-ftw regression cases, one Event per test
  (single-stage tests with a plain request; raw ``encoded_request`` cases are skipped
  and counted).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from bench.common import SHARED_DATA
from gatewatch.event import Event

CRS_TESTS = SHARED_DATA / "crs-regression" / "crs_tests_flat.jsonl.gz"


@dataclass(frozen=True, slots=True)
class CrsCase:
    name: str  # rule_id-test_id
    rule_id: int
    paranoia_level: int
    positive: bool
    expect_ids: frozenset[int]
    event: Event


def crs_regression() -> Iterator[CrsCase]:
    """Every single-stage positive or negative case with a request a log can carry."""
    with gzip.open(CRS_TESTS, "rb") as lines:
        for number, line in enumerate(lines):
            case = orjson.loads(line)
            if case["label"] not in ("positive", "negative") or len(case["stages"]) != 1:
                continue
            stage = case["stages"][0]
            request, log = stage["input"], stage["output"].get("log", {})
            event = _event(f"crs-{number}", request)
            if event is None:
                continue
            positive = case["label"] == "positive"
            ids = log.get("expect_ids" if positive else "no_expect_ids") or [case["rule_id"]]
            yield CrsCase(
                name=f"{case['rule_id']}-{case['test_id']}",
                rule_id=case["rule_id"],
                paranoia_level=case["rule_pl"],
                positive=positive,
                expect_ids=frozenset(int(i) for i in ids),
                event=event,
            )


def _event(request_id: str, request: dict[str, Any]) -> Event | None:
    if request.get("encoded_request") or "uri" not in request:
        return None
    uri = str(request.get("uri") or "/")
    path, _, query = uri.partition("?")
    headers = {str(k).lower(): str(v) for k, v in (request.get("headers") or {}).items()}
    data = request.get("data") or ""
    body = "".join(data) if isinstance(data, list) else str(data)
    return Event(
        request_id=request_id,
        ts=0.0,
        client_ip="203.0.113.10",
        method=str(request.get("method") or "GET"),
        path=path,
        route=path,
        status=200,
        host=headers.get("host", "localhost"),
        query=query,
        request_bytes=len(body),
        user_agent=headers.get("user-agent", ""),
        body=body,
        headers=headers,
    )
