"""``make demo`` runs gatewatch.demo; a short run proves the whole path works, up to the
dashboard it serves at the end (logged into over real HTTP, then stopped by SIGTERM)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from tests.alerts.receivers import free_port


def _read_until(proc: subprocess.Popen[str], marker: str, timeout_s: float) -> str:
    """Stdout up to and including the first line holding ``marker``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return "".join(lines)
    proc.kill()
    raise AssertionError(f"no {marker!r} within {timeout_s} s:\n{''.join(lines)}")


def test_demo_end_to_end_ends_with_the_dashboard(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewatch.demo", "--dir", str(tmp_path / "demo"),
         "--seconds", "120", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        out = _read_until(proc, "Dashboard:", timeout_s=300)
        assert "lines of kong traffic" in out and "lines of envoy traffic" in out
        assert "4 dead letters" in out  # the four broken lines the demo adds
        assert "busiest clients on the busiest routes" in out
        assert "query actor --ip" in out
        found = re.search(r"findings: (\d+) attack episodes detected", out)
        assert found and int(found.group(1)) >= 5, out
        assert "brute_force" in out
        alerts = re.search(r"alerts: (\d+)", out)
        assert alerts and int(alerts.group(1)) >= 3, out
        login = re.search(r"log in as (\S+) / (\S+)", out)
        assert login, out
        _use_the_dashboard(f"http://127.0.0.1:{port}", login.group(1), login.group(2))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert (tmp_path / "demo" / "clickhouse").is_dir()


def _use_the_dashboard(url: str, user: str, password: str) -> None:
    with httpx.Client(base_url=url, timeout=10, follow_redirects=True) as client:
        for _ in range(50):  # uvicorn binds just after the line is printed
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text
        done = client.post(
            "/login", data={"username": user, "password": password, "csrf": csrf.group(1)}
        )
        assert done.status_code == 200 and "Open alerts" in done.text, done.text
        listed = client.get("/api/v1/alerts").json()
        assert any("brute_force" in alert["title"] for alert in listed), listed
