"""Building Events for detector tests: defaults for every field, override what matters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gatewatch.event import Event

BASE_TS = 1_710_230_400.0  # 2024-03-12T08:00:00Z

_counter = [0]


def make_event(**fields: Any) -> Event:
    """An Event with a fresh request id and benign defaults."""
    _counter[0] += 1
    values: dict[str, Any] = {
        "request_id": f"r{_counter[0]}",
        "ts": BASE_TS,
        "client_ip": "198.51.100.10",
        "method": "GET",
        "path": "/api/v1/products",
        "route": "/api/v1/products",
        "status": 200,
        "scheme": "https",
        "host": "api.example.com",
        "tls_version": "TLSv1.3",
    }
    values.update(fields)
    return Event(**values)


def events_at(**defaults: Any) -> Callable[..., Event]:
    """``ev(t, **fields)``: an Event ``t`` seconds after BASE_TS, with these defaults
    (then make_event's) for what ``fields`` leaves out."""

    def ev(t: float, **fields: Any) -> Event:
        return make_event(**{**defaults, "ts": BASE_TS + t, **fields})

    return ev
