from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import pytest

from ingest.simulator.output import write_lines
from ingest.simulator.render import render_canonical, render_nginx
from ingest.simulator.request import SimRequest


def test_writes_one_newline_terminated_line_per_request(traffic: list[SimRequest]) -> None:
    out = io.BytesIO()
    requests = traffic[:2500]
    assert write_lines(requests, render_nginx, out) == 2500
    assert out.getvalue() == b"".join(render_nginx(r) + b"\n" for r in requests)


def test_flushes_periodically_and_reports_progress(traffic: list[SimRequest]) -> None:
    seen: list[int] = []
    out = io.BytesIO()
    written = write_lines(
        traffic[:250], render_canonical, out, progress=seen.append, flush_every=100
    )
    assert written == 250
    assert seen == [100, 200, 250]


def test_nothing_to_write() -> None:
    out = io.BytesIO()
    assert write_lines([], render_canonical, out, rate=1000.0) == 0
    assert out.getvalue() == b""


def test_rate_paces_lines_in_wall_time(traffic: list[SimRequest]) -> None:
    out = io.BytesIO()
    started = time.monotonic()
    assert write_lines(traffic[:50], render_canonical, out, rate=500.0) == 50
    elapsed = time.monotonic() - started
    assert 0.08 <= elapsed < 2.0
    assert out.getvalue().count(b"\n") == 50


def test_a_high_rate_is_not_slowed_by_sleep_granularity(traffic: list[SimRequest]) -> None:
    out = io.BytesIO()
    started = time.monotonic()
    write_lines(traffic[:2000], render_canonical, out, rate=20_000.0)
    assert 0.09 <= time.monotonic() - started < 1.0


@pytest.mark.parametrize("rate", [0.0, -5.0])
def test_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        write_lines([], render_canonical, io.BytesIO(), rate=rate)


def test_a_closed_pipe_stops_writing_quietly(traffic: list[SimRequest]) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    with open(write_fd, "wb") as out:
        assert write_lines(traffic[:3000], render_canonical, out, flush_every=10) == 0
    # The descriptor now points at /dev/null, so closing (flushing) did not raise.


def test_piping_into_head_exits_cleanly() -> None:
    program = (
        "import sys\n"
        "from ingest.simulator.output import write_lines\n"
        "from ingest.simulator.render import RENDERERS\n"
        "from ingest.simulator.traffic import SimulationConfig, generate\n"
        "n = write_lines(generate(SimulationConfig(count=200_000, duration_s=None)),\n"
        "                RENDERERS['envoy'], sys.stdout.buffer)\n"
        "print(n, file=sys.stderr)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", program],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=os.getcwd(),
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().startswith(b"[2024-03-12T08:00:00.")
        child.stdout.close()
        _, errors = child.communicate(timeout=30)
    assert child.returncode == 0, errors
    assert int(errors) < 200_000  # stopped early, and said nothing but the count
