"""One modest simulated run shared by the simulator tests (generated once per session)."""

from __future__ import annotations

import pytest

from ingest.simulator.request import SimRequest
from ingest.simulator.traffic import SimulationConfig, generate

RUN = SimulationConfig(seed=11, duration_s=120.0)


@pytest.fixture(scope="session")
def traffic() -> list[SimRequest]:
    """Two simulated minutes of default traffic: every actor type, about 13k requests."""
    return list(generate(RUN))
