"""``make demo``: the main job on embedded defaults, end to end, in under a minute.

Simulates 10 minutes of API traffic (ending now) as Kong, NGINX JSON and Envoy logs,
with labelled attack episodes of every kind and the benign traps injected into the Kong
log, adds a few broken lines, ingests everything into the embedded ClickHouse (chDB)
with the same pipeline and detectors ``gatewatch ingest`` uses, and prints what was
stored, the findings, the alerts and the forensic queries to try next. Then it serves
the dashboard on http://127.0.0.1:8080 with a demo login it prints, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dashboard.auth.store import Role
from dashboard.context import auth_store
from gatewatch.cli.logs import configure_logging
from gatewatch.cli.serve_cmd import serve_app
from gatewatch.live import LiveTraffic
from gatewatch.pipeline import DetectingSink
from gatewatch.settings import Settings, load_settings
from gatewatch.store.client import Store
from gatewatch.store.queries import (
    TimeRange,
    dead_letter_reasons,
    failed_auth_over_time,
    most_failed_logins,
    recent_alerts,
    recent_findings,
    top_talkers,
)
from gatewatch.store.writer import BatchWriter
from gatewatch.wiring import (
    build_alerting,
    build_engine,
    build_pipeline,
    findings_to,
    open_store,
)
from ingest.simulator.actor import Actor
from ingest.simulator.attacks import build_episodes, parse_kinds
from ingest.simulator.output import write_lines
from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from ingest.simulator.traps import build_traps
from ingest.sources.file import read_file

FORMATS = ("kong", "nginx-json", "envoy")
SIMULATED_SECONDS = 600.0
LIVE_SECONDS = 3600.0  # live traffic while the dashboard serves: 27 attacks over an hour
BROKEN_LINES = (
    b'{"started_at": 1700000000000, "request": {"method": "GET", "uri": "/api/v1/orde',
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 binary TLS bytes on a plain port",
    b'{"remote_addr": "203.0.113.7", "status": "two hundred", "request_uri": "/x"}',
    b"<html>an error page that ended up in the log</html>",
)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gatewatch.demo", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(".demo"), help="where to put everything")
    parser.add_argument(
        "--seconds",
        type=float,
        default=SIMULATED_SECONDS,
        help="simulated seconds of traffic per format (default 600)",
    )
    parser.add_argument(
        "--no-dashboard", action="store_true", help="stop after the summary (no web server)"
    )
    parser.add_argument("--port", type=int, default=8080, help="dashboard port (default 8080)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    home: Path = args.dir.resolve()
    shutil.rmtree(home, ignore_errors=True)
    (home / "logs").mkdir(parents=True)
    configure_logging("WARNING", "text")
    # The simulated load balancer sits in 10.0.0.0/8: trust its X-Forwarded-For.
    settings = load_settings(
        None,
        data_dir=str(home),
        ingest={"trusted_proxies": ["10.0.0.0/8", "127.0.0.0/8"]},
        dashboard={"port": args.port},
    )

    started = time.monotonic()
    files = _simulate(home, args.seconds)

    store = open_store(settings)
    writer = BatchWriter(store, max_rows=settings.storage.batch_max_rows)
    alerting = build_alerting(settings, store, writer)
    assert alerting is not None  # on by default
    alerting.start()
    lines = events = dead = 0
    for path, _ in files:
        # One engine per log: each file is its own gateway's stream, in its own time order.
        engine = build_engine(settings, findings_to(writer.add_finding, alerting.on_finding))
        pipeline = build_pipeline(settings, "auto")
        pipeline.run(
            read_file(path, max_line_bytes=settings.ingest.max_line_bytes),
            DetectingSink(writer, engine.process),
        )
        engine.finish()
        writer.flush()
        lines += pipeline.stats.lines
        events += pipeline.stats.events
        dead += pipeline.stats.dead_letters
    alerting.finish()
    alerting.stop()
    writer.flush()
    elapsed = time.monotonic() - started
    print(
        f"\ningested {lines:,} lines (format detected per line): {events:,} events, "
        f"{dead:,} dead letters, in {elapsed:.1f} s"
    )
    print(f"stored: events {store.count('events'):,}, dead_letters {store.count('dead_letters'):,}")
    for reason, count in dead_letter_reasons(store):
        print(f"  dead letter: {reason} ({count})")

    now = datetime.now(UTC)
    window = TimeRange(now - timedelta(hours=1), now + timedelta(minutes=1))
    print("\nbusiest clients on the busiest routes (last hour):")
    for route, ip, requests, errors in top_talkers(store, window, per_route=1, routes=5):
        print(f"  {route:44} {ip:39} {requests:>6,} requests {errors:>5,} errors")
    failed = failed_auth_over_time(store, window, bucket="5m")
    print("failed logins (401/403) per 5 minutes: " + ", ".join(f"{u + f}" for _, u, f in failed))

    _print_findings(store, window)
    _print_alerts(store, window, home)

    ip, user = most_failed_logins(store, window) or ("198.51.100.7", "alice")
    gw = f"GATEWATCH_DATA_DIR={home} .venv/bin/gatewatch"
    print(f"""
Everything is in the embedded ClickHouse at {settings.storage_dsn}
(database {settings.storage.database}: tables events, dead_letters, findings, alerts,
alert_deliveries).

Try a forensic query:
  {gw} query actor --ip {ip} --since 1h
  {gw} query actor --user {user or "alice"} --since 1h
  {gw} query top-talkers --since 1h --route /api/v1/auth/login
  {gw} query failed-auth --since 1h --bucket 5m
  {gw} query findings --since 1h
  {gw} db stats
Or ingest more:
  .venv/bin/gatewatch simulate --format traefik --duration 300 | {gw} ingest --input -
""")
    try:
        if not args.no_dashboard:
            _serve_dashboard(settings, store)
    finally:
        store.close()
    return 0


def _serve_dashboard(settings: Settings, store: Store) -> None:
    """The dashboard on 127.0.0.1 with a demo login, while live simulated traffic with
    an attack every few minutes keeps it moving, until Ctrl-C."""
    password = secrets.token_urlsafe(12)
    users = auth_store(settings)
    users.add_user("demo", password, Role.ADMIN)
    live = LiveTraffic(settings, store, attacks="all", duration_s=LIVE_SECONDS).start()
    print(
        f"Dashboard: http://{settings.dashboard.host}:{settings.dashboard.port}/  "
        f"log in as demo / {password}   (live traffic with attacks; Ctrl-C to stop)",
        flush=True,
    )
    try:
        serve_app(settings, store, users=users)
    finally:
        live.stop()


def _simulate(home: Path, seconds: float) -> list[tuple[Path, int]]:
    """Simulated traffic ending now, one log per format; the attacks go into the first."""
    start_ts = time.time() - seconds
    files = []
    for seed, fmt in enumerate(FORMATS, start=1):
        path = home / "logs" / f"{fmt}.log"
        config = SimulationConfig(
            seed=seed,
            start_ts=start_ts,
            duration_s=seconds,
            web_users=5_000,
            mobile_users=2_500,
        )
        extra: list[Actor] = []
        if fmt == FORMATS[0]:
            episodes = build_episodes(config, parse_kinds("all"))
            extra = [*build_traps(config), *episodes]
            print(f"injecting {len(episodes)} attack episodes into the {fmt} traffic")
        with path.open("wb") as out:
            written = write_lines(generate(config, extra), RENDERERS[fmt], out)
            if fmt == FORMATS[-1]:
                out.write(b"\n".join(BROKEN_LINES) + b"\n")
                written += len(BROKEN_LINES)
        files.append((path, written))
        print(f"simulated {written:>7,} lines of {fmt} traffic  -> {path}")
    return files


def _print_alerts(store: Store, window: TimeRange, home: Path) -> None:
    alerts = recent_alerts(store, window, limit=1000)
    print(f"\nalerts: {len(alerts)} (one per attacking actor, updated rather than repeated)")
    for row in alerts[:10]:
        print(f"  {row[10]}")
    print(f"every alert as sent: {home / 'alerts.jsonl'} (and the console channel above)")


def _print_findings(store: Store, window: TimeRange) -> None:
    findings = recent_findings(store, window, limit=1000)
    print(f"\nfindings: {len(findings)} attack episodes detected")
    for row in findings[:15]:
        _detected, kind, subkind, severity, etype, entity, *_ = row
        label = f"{kind}/{subkind}" if subkind else kind
        print(f"  {severity:8} {label:34} {etype}={entity}: {row[8]}")


if __name__ == "__main__":
    sys.exit(main())
