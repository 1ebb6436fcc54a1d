"""Simulated traffic rendered in every format comes back as the same Events.

The simulator's renderers and the parsers were written separately from each format's
documentation; this checks they agree, through the whole ingest path (auto-detection,
normalisation, trusted-proxy resolution, masking).
"""

from __future__ import annotations

import pytest

from gatewatch.event import Event
from gatewatch.settings import Settings
from gatewatch.wiring import build_pipeline
from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from ingest.sources.base import Record

START = 1_790_000_000.0
REQUESTS = list(generate(SimulationConfig(seed=3, start_ts=START, count=1500, duration_s=None)))

# What each format logs, beyond time, method, path and status (which all do).
CARRIES: dict[str, set[str]] = {
    "canonical": {"client_ip", "query", "response_bytes", "user_agent", "request_id", "host"},
    # Kong's response.size counts headers too, so it is not the body size others log.
    "kong": {"client_ip", "query", "user_agent", "host"},
    "envoy": {"query", "response_bytes", "user_agent", "request_id", "host"},
    "envoy-json": {"client_ip", "query", "response_bytes", "user_agent", "request_id", "host"},
    "nginx": {"client_ip", "query", "response_bytes", "user_agent"},
    "nginx-json": {"client_ip", "query", "response_bytes", "user_agent", "request_id", "host"},
    "apache": {"client_ip", "query", "response_bytes", "user_agent"},
    "traefik": {"client_ip", "query", "response_bytes", "user_agent", "host"},
    "aws-apigw": {"client_ip", "response_bytes", "user_agent", "host"},
}
# Formats that log the Authorization header, so the JWT's subject becomes the user.
CARRIES_AUTHORIZATION = {"canonical", "kong", "nginx-json", "traefik"}
# Formats that write whole seconds.
SECOND_RESOLUTION = {"nginx", "apache"}


@pytest.fixture
def trusting(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})}
    )


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_rendered_traffic_parses_back(fmt: str, trusting: Settings) -> None:
    assert set(RENDERERS) == set(CARRIES)
    pipeline = build_pipeline(trusting, "auto", for_storage=False)
    pipeline.normaliser.min_ts = 0
    render = RENDERERS[fmt]
    mismatches: list[str] = []
    dead = 0
    for i, request in enumerate(REQUESTS):
        line = render(request)
        result = pipeline.process(Record("rt", i, line, len(line)))
        if not isinstance(result, Event):
            dead += 1
            mismatches.append(f"dead letter: {result.reason}: {line[:160]!r}")
            continue
        tolerance = 1.0 if fmt in SECOND_RESOLUTION else 0.002
        checks = {
            "ts": abs(result.ts - request.ts) <= tolerance,
            "method": result.method == request.method,
            "path": result.path == request.path,
            "status": result.status == request.status,
        }
        carried = CARRIES[fmt]
        if "client_ip" in carried:
            checks["client_ip"] = result.client_ip == request.client_ip
        if "query" in carried and "=" in request.query:
            checks["query"] = result.query.split("=")[0] == request.query.split("=")[0]
        if "response_bytes" in carried:
            checks["response_bytes"] = result.response_bytes == request.response_bytes
        if "user_agent" in carried:
            checks["user_agent"] = result.user_agent == request.user_agent
        if "host" in carried:
            checks["host"] = result.host == request.host
        if "request_id" in carried:
            checks["request_id"] = result.request_id.replace("-", "") == request.request_id.replace(
                "-", ""
            )
        if fmt in CARRIES_AUTHORIZATION and "authorization" in request.headers:
            checks["user from JWT"] = result.user == request.user
        if request.api_key:
            checks["secret masked"] = request.api_key not in repr(result)
        wrong = [name for name, ok in checks.items() if not ok]
        if wrong:
            mismatches.append(f"{wrong}: {request} -> {result}")
    assert dead == 0 and not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:2]}"
