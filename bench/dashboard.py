"""The dashboard: overview server time with 10M stored events, and the live feed's
event-to-screen latency.

Targets (issue 6): the overview <= 500 ms server time with 10M events; a finding on
screen <= 2 s after the event that triggered it.

1. 10M events spread over the last 24 hours (200k clients, 40 routes, a 5% share of
   401s) are generated inside ClickHouse (INSERT ... SELECT from numbers()), then the
   overview API (1 h, 6 h, 24 h windows) and the route inventory are timed through the
   real app, a few runs each (server time: the request handled in process).
2. Live simulated traffic with attacks runs through the pipeline into the store while
   an authenticated client listens to /api/v1/live; each finding's latency is its
   arrival minus its detected_ts (the triggering event's time, live = wall clock).

    python -m bench.dashboard [--events 10000000] [--live-seconds 120]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from bench.common import figure
from dashboard.app import create_app
from dashboard.auth.passwords import ScryptParams
from dashboard.auth.store import AuthStore, Role
from gatewatch.live import LiveTraffic
from gatewatch.settings import load_settings
from gatewatch.store.client import Store

PASSWORD = "bench password long enough"


def _fill(store: Store, events: int) -> float:
    started = time.perf_counter()
    store.command(
        f"INSERT INTO {store.database}.events (ts, client_ip, request_id, method, scheme, "
        "host, path, route, status, latency_ms, request_bytes, response_bytes, user_agent, "
        "user, api_key, source, position) "
        "SELECT now64(3) - toIntervalMillisecond(intDiv(number * 86400000, "
        f"{events})) AS ts, "
        "toIPv6(IPv4NumToString(toUInt32(3232235520 + number % 200000))) AS client_ip, "
        "toString(generateUUIDv4()) AS request_id, "
        "['GET','POST','PUT','DELETE'][1 + number % 4] AS method, 'https' AS scheme, "
        "'api.example.com' AS host, concat('/api/v1/r', toString(number % 40), '/', "
        "toString(number % 9973)) AS path, concat('/api/v1/r', toString(number % 40), "
        "'/{id}') AS route, if(number % 20 = 0, 401, if(number % 97 = 0, 500, 200)) AS status, "
        "toFloat32(number % 300) AS latency_ms, 200 AS request_bytes, 1500 AS response_bytes, "
        "'bench-agent/1.0' AS user_agent, if(number % 3 = 0, '', concat('user', "
        "toString(number % 50000))) AS user, '' AS api_key, 'bench' AS source, "
        f"number AS position FROM numbers({events})",
        settings={"max_insert_threads": 2},
    )
    return time.perf_counter() - started


def _login(client: TestClient) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    done = client.post(
        "/login",
        data={"username": "bench", "password": PASSWORD, "csrf": token.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text


def _time(client: TestClient, path: str, runs: int = 5) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.text[:200])
    return times


def _overview(home: Path, store: Store, events: int) -> None:
    settings = load_settings(
        None, data_dir=str(home / "data"), storage={"dsn": store.dsn, "database": store.database}
    )
    seconds = _fill(store, events)
    figure("stored for the overview", events / seconds, "events/s", f"{events:,} events")
    users = AuthStore(home / "auth.sqlite", hashing=ScryptParams(n=1024))
    users.add_user("bench", PASSWORD, Role.ADMIN)
    app = create_app(settings, store, users=users)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        _login(client)
        for path in ("/api/v1/overview?minutes=60", "/api/v1/overview?minutes=360",
                     "/api/v1/overview?minutes=1440", "/api/v1/routes?hours=24", "/"):  # fmt: skip
            if client.get(path).status_code == 404:
                print(f"  {path}: not served (yet)")
                continue
            times = _time(client, path)
            note = f"max {max(times):.0f} ms over {len(times)} runs, {events:,} events"
            figure(f"GET {path}", statistics.median(times), "ms", note)


def _live(home: Path, dsn: str, seconds: float) -> None:
    store = Store(dsn, database="live")
    store.migrate()
    settings = load_settings(
        None,
        data_dir=str(home / "live"),
        storage={"dsn": store.dsn, "database": "live"},
        alerts={"channels": {"f": {"url": "file:alerts.jsonl"}}, "routes": [{"channels": ["f"]}]},
    )
    users = AuthStore(home / "auth-live.sqlite", hashing=ScryptParams(n=1024))
    users.add_user("bench", PASSWORD, Role.ADMIN)
    app = create_app(settings, store, users=users)
    latencies: list[float] = []
    with TestClient(app, base_url="http://127.0.0.1") as client:
        _login(client)
        traffic = LiveTraffic(settings, store, attacks="all", duration_s=seconds, background=0.2)
        deadline = time.time() + seconds

        def listen() -> None:
            with client.stream("GET", "/api/v1/live") as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        data = orjson.loads(line.removeprefix("data: "))
                        if "detected" in data:
                            detected = _epoch(data["detected"])
                            if detected > started:
                                latencies.append(time.time() - detected)
                    if time.time() > deadline:
                        return

        started = time.time()
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        traffic.start()
        listener.join(seconds + 30)
        traffic.stop()
    if latencies:
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        figure("live: detected to screen p50", statistics.median(latencies) * 1000, "ms",
               f"{len(latencies)} finding versions, {traffic.requests:,} requests")  # fmt: skip
        figure(
            "live: detected to screen p95", p95 * 1000, "ms", f"max {latencies[-1] * 1000:.0f} ms"
        )
    else:
        print("  live: no finding arrived (run longer: --live-seconds)")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--live-seconds", type=float, default=120.0)
    args = parser.parse_args([] if __name__ != "__main__" else None)
    home = Path(tempfile.mkdtemp(prefix="gw-bench-dashboard-"))
    store = Store(f"chdb://{home / 'chdb'}")  # one chDB engine per process: shared
    store.migrate()
    try:
        _overview(home, store, args.events)
        _live(home, store.dsn, args.live_seconds)
    finally:
        store.close()


if __name__ == "__main__":
    main()
