"""One modest simulated run shared by the simulator tests (generated once per session)."""

from __future__ import annotations

import pytest

from ingest.simulator.request import SimRequest
from ingest.simulator.traffic import SimulationConfig, generate

RUN = SimulationConfig(seed=11, duration_s=120.0)


def quiet(seed: int = 0, duration_s: float = 300.0) -> SimulationConfig:
    """A quieter benign crowd (fewer sessions and partner calls), for tests that
    generate several runs or need the attack requests to stand out."""
    return SimulationConfig(
        seed=seed,
        duration_s=duration_s,
        web_session_rate=0.3,
        corporate_session_rate=0.2,
        mobile_session_rate=0.3,
        partner_rate=2.0,
    )


@pytest.fixture(scope="session")
def traffic() -> list[SimRequest]:
    """Two simulated minutes of default traffic: every actor type, about 13k requests."""
    return list(generate(RUN))
