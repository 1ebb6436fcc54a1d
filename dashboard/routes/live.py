"""``/api/v1/live``: new findings and alert versions as they are stored, pushed to the
browser as Server-Sent Events (``event: finding`` / ``event: alert``, JSON data).

The stream polls the store four times a second from where it last was (``stored_at``,
which a minmax index makes cheap), so a finding reaches the screen within about half a
second of being stored. A comment line every 15 s keeps proxies from closing an idle
stream. Streams per server are capped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from dashboard import queries
from dashboard.deps import Gw, Viewer

router = APIRouter(prefix="/api/v1", tags=["live"])

POLL_S = 0.25
KEEPALIVE_S = 15.0
MAX_STREAMS = 32
_open = [0]
_count_lock = threading.Lock()


def _messages(findings: queries.Rows, alerts: queries.Rows) -> list[bytes]:
    out: list[bytes] = []
    for stored, fid, kind, subkind, severity, etype, entity, summary, detected in findings:
        data = {"stored": queries.iso(stored), "id": fid, "kind": kind, "subkind": subkind,
                "severity": severity, "entity_type": etype, "entity": entity,
                "summary": summary, "detected": queries.iso(detected)}  # fmt: skip
        out.append(b"event: finding\ndata: " + orjson.dumps(data) + b"\n\n")
    for stored, aid, version, state, severity, title, count, updated, atype, actor in alerts:
        data = {"stored": queries.iso(stored), "id": aid, "version": version, "state": state,
                "severity": severity, "title": title, "findings": count,
                "updated": queries.iso(updated), "actor_type": atype, "actor": actor}  # fmt: skip
        out.append(b"event: alert\ndata: " + orjson.dumps(data) + b"\n\n")
    return out


@router.get("/live", summary="new findings and alerts as Server-Sent Events")
async def live(request: Request, _: Viewer, gw: Gw) -> StreamingResponse:
    with _count_lock:
        if _open[0] >= MAX_STREAMS:
            raise HTTPException(503, f"too many live streams (at most {MAX_STREAMS})")
        _open[0] += 1

    async def stream() -> AsyncIterator[bytes]:
        cursor = await run_in_threadpool(gw.db.run, queries.latest_stored)
        quiet = 0.0
        try:
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                found = await run_in_threadpool(gw.db.run, queries.stored_since, cursor)
                findings, alerts, cursor = found
                messages = _messages(findings, alerts)
                for message in messages:
                    yield message
                quiet = 0.0 if messages else quiet + POLL_S
                if quiet >= KEEPALIVE_S:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
                await asyncio.sleep(POLL_S)
        finally:
            with _count_lock:
                _open[0] -= 1

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )
