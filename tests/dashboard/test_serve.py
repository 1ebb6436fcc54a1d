"""``gatewatch serve`` as an operator runs it: HTTPS from a certificate and key (HSTS,
Secure cookies), and a clean exit on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.alerts.receivers import free_port

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl for a test cert")
def test_https_with_hsts_and_secure_cookies_then_sigterm(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    env |= {
        "GATEWATCH_DATA_DIR": str(tmp_path / "data"),
        "GATEWATCH_DASHBOARD__TLS_CERT": str(cert),
        "GATEWATCH_DASHBOARD__TLS_KEY": str(key),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewatch", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=False, timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    health = client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.communicate()[1]
                    assert time.monotonic() < deadline, "the dashboard did not come up"
                    time.sleep(0.2)
            assert health.json() == {"status": "ok"}
            assert health.headers["strict-transport-security"].startswith("max-age=")
            login = client.get("/login")
            cookie = login.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie
            assert client.get("/api/v1/alerts").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
