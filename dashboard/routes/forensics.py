"""Forensics: ``/api/v1/events`` and ``/api/v1/findings`` (search, keyset-paged),
``/api/v1/events/export`` (CSV or JSON Lines), and ``/api/v1/sql`` (analysts'
read-only SQL over Gatewatch's tables). Every search and query is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from dashboard.deps import Analyst, Gw, Principal, Viewer, client_ip
from dashboard.forensics import (
    FORENSIC_TABLES,
    EventSearch,
    FindingSearch,
    ForensicSqlError,
    export_events,
    run_readonly_sql,
    search_events,
    search_findings,
)

router = APIRouter(prefix="/api/v1", tags=["forensics"])

EXPORT_MAX_ROWS = 100_000


class PageOut(BaseModel):
    rows: list[dict[str, Any]]
    next_cursor: str | None


class SqlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=20_000)


class SqlOut(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float


def _audit(gw: Gw, who: Principal, request: Request, action: str, detail: str) -> None:
    gw.audit.record(
        principal=who.name, role=who.role.value, auth=who.auth, client_ip=client_ip(request),
        method=request.method, path=request.url.path, action=action, detail=detail,
    )  # fmt: skip


@router.get("/events", summary="search events (keyset-paged, newest first)")
async def events(
    q: Annotated[EventSearch, Query()], who: Viewer, gw: Gw, request: Request
) -> PageOut:
    page = await run_in_threadpool(search_events, gw.db.store, q)
    _audit(gw, who, request, "search_events", q.model_dump_json(exclude_none=True))
    return PageOut(rows=page.rows, next_cursor=page.next_cursor)


@router.get("/events/export.{format}", summary="export matching events as CSV or JSON Lines")
async def export(
    format: Literal["csv", "jsonl"],
    q: Annotated[EventSearch, Query()],
    who: Viewer,
    gw: Gw,
    request: Request,
) -> StreamingResponse:
    chunks = export_events(gw.db.store, q, format, max_rows=EXPORT_MAX_ROWS)
    _audit(gw, who, request, "export_events", q.model_dump_json(exclude_none=True))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="gatewatch-events-{stamp}.{format}"'
        },
    )


@router.get("/findings", summary="search findings (keyset-paged, newest first)")
async def findings(
    q: Annotated[FindingSearch, Query()], who: Viewer, gw: Gw, request: Request
) -> PageOut:
    page = await run_in_threadpool(search_findings, gw.db.store, q)
    _audit(gw, who, request, "search_findings", q.model_dump_json(exclude_none=True))
    return PageOut(rows=page.rows, next_cursor=page.next_cursor)


@router.post("/sql", summary="run a read-only SQL query over Gatewatch's tables")
async def sql(body: SqlIn, who: Analyst, gw: Gw, request: Request) -> SqlOut:
    dash = gw.settings.dashboard
    _audit(gw, who, request, "sql", body.sql)
    try:
        result = await run_in_threadpool(
            run_readonly_sql,
            gw.db.store,
            body.sql,
            max_rows=dash.sql_max_rows,
            timeout_s=dash.sql_timeout_s,
            allowed_tables=FORENSIC_TABLES,
        )
    except ForensicSqlError as exc:
        raise HTTPException(400, str(exc)) from exc
    return SqlOut(
        columns=result.columns,
        rows=result.rows,
        truncated=result.truncated,
        elapsed_ms=round(result.elapsed_ms, 1),
    )
