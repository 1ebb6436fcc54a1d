"""``gatewatch serve``: the SOC dashboard and JSON API (FastAPI under uvicorn).

With the embedded store (chDB) the dashboard must be the only process using the data
directory; with a ClickHouse server (``storage.dsn``) it runs beside ``gatewatch run``.
"""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

from gatewatch.cli.common import settings_from
from gatewatch.settings import Settings
from gatewatch.store.client import Store
from gatewatch.wiring import open_store

if TYPE_CHECKING:
    from dashboard.auth.store import AuthStore

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the SOC dashboard and JSON API",
        description="Serve the dashboard (log in at /login; add users with `gatewatch "
        "users add`) and the JSON API under /api/v1 (OpenAPI at /api/v1/openapi.json). "
        "Stops cleanly on SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--host", help="listen address (default: dashboard.host)")
    parser.add_argument("--port", type=int, help="listen port (default: dashboard.port)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    serve(settings_from(args, **({"dashboard": overrides} if overrides else {})))
    return 0


def serve(settings: Settings) -> None:
    """Run the dashboard on its own store until SIGTERM or Ctrl-C."""
    store = open_store(settings)
    try:
        serve_app(settings, store)
    finally:
        store.close()


def serve_app(settings: Settings, store: Store, *, users: AuthStore | None = None) -> None:
    """Run the dashboard over ``store`` until SIGTERM or Ctrl-C (uvicorn finishes the
    requests in flight first)."""
    # The web stack is imported only to serve: the other commands start without it.
    import uvicorn  # noqa: PLC0415

    from dashboard.app import create_app  # noqa: PLC0415

    dash = settings.dashboard
    app = create_app(settings, store, users=users)
    log.info("dashboard on %s://%s:%d", "https" if dash.tls_cert else "http", dash.host, dash.port)
    # uvicorn shuts down gracefully on SIGTERM / SIGINT, then re-raises the signal
    # to the handler it found: ours ends the run normally, so the store is closed.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        uvicorn.run(
            app,
            host=dash.host,
            port=dash.port,
            ssl_certfile=str(dash.tls_cert) if dash.tls_cert else None,
            ssl_keyfile=str(dash.tls_key) if dash.tls_key else None,
            log_level="warning",
            server_header=False,
            proxy_headers=dash.behind_tls_proxy,
            timeout_graceful_shutdown=10,
        )
    except _StopSignalError:
        log.info("dashboard stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _StopSignalError(Exception):
    """A stop signal arrived (after uvicorn's graceful shutdown)."""


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise _StopSignalError(signal.Signals(signum).name)
