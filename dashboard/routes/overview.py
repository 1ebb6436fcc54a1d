"""``/api/v1/overview``: what is happening now, for the overview page's charts: request
rate, failed authentications and findings per time bucket, the actors with the most
findings, and the open alerts by severity.

Buckets are aligned to the epoch (a bucket's start is a multiple of its length), so
the points of a chart stay put from one refresh to the next. The window starts at the
start of the bucket holding ``now - minutes`` and ends now: every bucket is complete
but the last, which is still filling; its rates are averaged over the part of it that
has passed. Every bucket is listed, a quiet one with 0, so a chart's axis is
continuous.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, NamedTuple

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from dashboard import overview_queries
from dashboard.deps import Gw, Viewer
from dashboard.overview_queries import Rows
from dashboard.queries import iso
from gatewatch.store.client import Store

router = APIRouter(prefix="/api/v1/overview", tags=["overview"])

Bucket = Literal["1m", "5m", "15m", "1h"]
BUCKET_SECONDS: dict[Bucket, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}
DEFAULT_MAX_BUCKETS = 120  # the default bucket is the finest that stays within this
MAX_BUCKETS = 720  # more points than a chart can show: refused
TOP_ACTORS = 10


def clock() -> datetime:
    """Now, in UTC to the millisecond: where the overview and inventory windows end.
    A dependency, so tests can fix it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


Now = Annotated[datetime, Depends(clock)]


class Point(BaseModel):
    t: str  # the bucket's start
    value: float


class Count(BaseModel):
    t: str
    value: int


class Window(BaseModel):
    since: str
    until: str
    bucket_s: int


class Actor(BaseModel):
    entity_type: str
    entity: str
    findings: int
    worst_severity: str
    last_seen: str  # the latest event time in its findings


class OpenAlerts(BaseModel):
    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0


class Totals(BaseModel):
    events: int
    failed_auth: int  # 401 and 403 responses
    findings: int


class Overview(BaseModel):
    window: Window
    events_per_s: list[Point]
    failed_auth_per_min: list[Point]
    findings_by_kind: dict[str, list[Count]]
    top_actors: list[Actor]
    open_alerts: OpenAlerts
    totals: Totals


def most_buckets(minutes: int, step: int) -> int:
    """The most buckets of ``step`` seconds a window of ``minutes`` can touch: one
    more than it spans, as its start rarely falls on a bucket boundary.

    >>> most_buckets(60, 60), most_buckets(60, 900), most_buckets(50, 900)
    (61, 5, 5)
    """
    return -(-minutes * 60 // step) + 1


def default_bucket(minutes: int) -> Bucket:
    """The finest bucket that keeps a window of ``minutes`` within
    ``DEFAULT_MAX_BUCKETS`` points.

    >>> default_bucket(60), default_bucket(120), default_bucket(1440)
    ('1m', '5m', '15m')
    """
    for name, step in BUCKET_SECONDS.items():
        if most_buckets(minutes, step) <= DEFAULT_MAX_BUCKETS:
            return name
    return "1h"


def bucket_starts(since: datetime, until: datetime, step: int) -> list[int]:
    """The epoch second each bucket of the window starts at (``since`` is on a
    bucket boundary)."""
    return list(range(int(since.timestamp()), math.ceil(until.timestamp()), step))


class _Reads(NamedTuple):
    traffic: Rows
    findings: Rows
    actors: Rows
    alerts: Rows


def _read(store: Store, since: datetime, until: datetime, step: int) -> _Reads:
    """The overview's four queries, under one hold of the store."""
    return _Reads(
        overview_queries.traffic(store, since, until, step),
        overview_queries.findings_by_kind(store, since, until, step),
        overview_queries.top_actors(store, since, until, limit=TOP_ACTORS),
        overview_queries.open_alerts_by_severity(store),
    )


def _time(epoch_s: float) -> str:
    return iso(datetime.fromtimestamp(epoch_s, UTC))


@router.get("", summary="request rate, failed auth, findings, top actors, open alerts")
def overview(
    _: Viewer,
    gw: Gw,
    now: Now,
    minutes: Annotated[int, Query(ge=5, le=1440)] = 60,
    bucket: Bucket | None = None,
) -> Overview:
    name = bucket or default_bucket(minutes)
    step = BUCKET_SECONDS[name]
    if most_buckets(minutes, step) > MAX_BUCKETS:
        raise HTTPException(
            422,
            f"bucket: {name} buckets over {minutes} minutes make more than {MAX_BUCKETS} "
            "points; choose a longer bucket",
        )
    start = int((now - timedelta(minutes=minutes)).timestamp()) // step * step
    since = datetime.fromtimestamp(start, UTC)
    data = gw.db.run(_read, since, now, step)
    starts = bucket_starts(since, now, step)
    # The last bucket may still be filling: rates are per second it has been open.
    open_s = {t: min(t + step, now.timestamp()) - t for t in starts}
    traffic = {t: (n, failed) for t, n, failed in data.traffic}
    by_kind: dict[str, dict[int, int]] = {}
    for t, kind, n in data.findings:
        by_kind.setdefault(kind, {})[t] = n
    alerts = {sev: n for sev, n in data.alerts if sev in OpenAlerts.model_fields}
    return Overview(
        window=Window(since=_time(start), until=iso(now), bucket_s=step),
        events_per_s=[
            Point(t=_time(t), value=traffic.get(t, (0, 0))[0] / open_s[t]) for t in starts
        ],
        failed_auth_per_min=[
            Point(t=_time(t), value=traffic.get(t, (0, 0))[1] * 60 / open_s[t]) for t in starts
        ],
        findings_by_kind={
            kind: [Count(t=_time(t), value=counts.get(t, 0)) for t in starts]
            for kind, counts in sorted(by_kind.items())
        },
        top_actors=[
            Actor(
                entity_type=etype,
                entity=entity,
                findings=n,
                worst_severity=worst,
                last_seen=iso(last),
            )
            for etype, entity, n, worst, _, last in data.actors
        ],
        open_alerts=OpenAlerts(**alerts),
        totals=Totals(
            events=sum(n for n, _ in traffic.values()),
            failed_auth=sum(failed for _, failed in traffic.values()),
            findings=sum(sum(counts.values()) for counts in by_kind.values()),
        ),
    )
