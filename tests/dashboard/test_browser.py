"""The dashboard in a real browser (Debian's headless Chromium through chromedriver):
log in, watch the live feed update while the simulator injects an attack, acknowledge
the alert, run a forensic search, open the actor page. Screenshots of each step are
kept as test artefacts in ``test-artefacts/browser/`` (or ``$TEST_ARTEFACTS``)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from dashboard.app import create_app
from gatewatch.live import LiveTraffic
from tests.alerts.receivers import free_port
from tests.dashboard.conftest import ATTACKER, PASSWORD, Dashboard

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Debian's chromium and chromium-driver (make test installs them as root)",
    ),
]

if CHROMIUM is not None and CHROMEDRIVER is not None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait


class _Server:
    """The dashboard under uvicorn on 127.0.0.1, on a thread of the test process."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def artefacts() -> Path:
    default = Path(__file__).resolve().parents[2] / "test-artefacts"
    where = Path(os.environ.get("TEST_ARTEFACTS", default)) / "browser"
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, seconds: float = 15) -> Any:
    return WebDriverWait(driver, seconds, poll_frequency=0.2)


def test_triage_in_a_real_browser(dashboard: Dashboard, browser: Any, artefacts: Path) -> None:
    app = create_app(dashboard.settings, dashboard.store, users=dashboard.users)
    with _Server(app) as url:
        # Log in.
        browser.get(f"{url}/")
        _wait(browser).until(ec.presence_of_element_located((By.NAME, "username")))
        browser.find_element(By.NAME, "username").send_keys("ana")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        rows = _wait(browser).until(
            ec.presence_of_all_elements_located((By.CSS_SELECTOR, "#open-alerts tr[data-alert-id]"))
        )
        assert rows
        _wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chart-events svg")))
        browser.save_screenshot(str(artefacts / "1-overview.png"))

        # The live feed updates while the simulator injects a brute force.
        browser.get(f"{url}/live")
        _wait(browser).until(ec.text_to_be_present_in_element((By.ID, "live-status"), "connected"))
        traffic = LiveTraffic(
            dashboard.settings, dashboard.store, attacks="brute_force", duration_s=40,
            background=0.02, seed=3,
        ).start()  # fmt: skip
        try:
            item = _wait(browser, 90).until(
                ec.presence_of_element_located((By.CSS_SELECTOR, "#live-feed li.feed-item"))
            )
            assert "brute_force" in browser.find_element(By.ID, "live-feed").text, item.text
            browser.save_screenshot(str(artefacts / "2-live-feed.png"))
        finally:
            traffic.stop()

        # Acknowledge the seeded alert.
        browser.get(f"{url}/alerts/{dashboard.alert_id}")
        _wait(browser).until(
            ec.element_to_be_clickable(
                (By.CSS_SELECTOR, 'button.triage[data-action="acknowledge"]')
            )
        ).click()
        _wait(browser).until(
            ec.text_to_be_present_in_element((By.ID, "alert-status"), "acknowledged")
        )
        assert "acknowledge" in browser.find_element(By.ID, "triage-trail").text
        browser.save_screenshot(str(artefacts / "3-alert-acknowledged.png"))

        # A forensic search for the attacker's address.
        browser.get(f"{url}/search")
        field = _wait(browser).until(ec.presence_of_element_located((By.NAME, "ip")))
        field.send_keys(ATTACKER)
        browser.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
        results = _wait(browser).until(
            ec.presence_of_all_elements_located((By.CSS_SELECTOR, "#search-results tr.result"))
        )
        assert len(results) == 30
        browser.save_screenshot(str(artefacts / "4-search.png"))

        # The actor page: what this address did.
        browser.get(f"{url}/actors/ip/{ATTACKER}")
        requests = _wait(browser).until(
            ec.presence_of_all_elements_located((By.CSS_SELECTOR, "#actor-timeline tr.request"))
        )
        assert len(requests) == 30
        assert "brute_force" in browser.find_element(By.ID, "actor-findings").text
        browser.save_screenshot(str(artefacts / "5-actor.png"))
        logs = browser.get_log("browser") if hasattr(browser, "get_log") else []
        csp = [entry for entry in logs if "Content Security Policy" in str(entry)]
        assert not csp, csp
