"""Bad input loses nothing: every line becomes an event or a dead letter, exactly."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from gatewatch.settings import Settings
from gatewatch.store.client import Store
from gatewatch.store.writer import BatchWriter
from gatewatch.wiring import build_pipeline
from ingest.sources.base import Record
from ingest.sources.file import read_file
from tests.conftest import store_settings

NOW = time.time()


def canonical(i: int, **fields: object) -> bytes:
    event: dict[str, object] = {
        "request_id": f"req-{i}",
        "ts": int((NOW - 3600 + i) * 1000),
        "client_ip": f"198.51.100.{i % 250}",
        "method": "GET",
        "path": f"/api/v1/orders/{1000 + i}",
        "status": 200,
        "user_agent": "okhttp/4.12",
    }
    event.update(fields)
    return orjson.dumps(event)


# (line, the dead-letter reason it must get) — one per kind of breakage.
BROKEN: list[tuple[bytes, str]] = [
    (canonical(1)[:-20], "not JSON"),
    (b"[1, 2, 3]", "does not match"),  # a leading [ reads as Envoy text
    (canonical(2, status="two hundred"), "status: expected an integer"),
    (canonical(3, status=[200]), "status"),
    (canonical(4, client_ip="not-an-address"), "client_ip"),
    (canonical(5, ts="yesterday"), "ts: unrecognised"),
    (canonical(6, ts=int((NOW + 10 * 86_400) * 1000)), "in the future"),
    (canonical(7, ts="1999-12-31T23:59:59Z"), "before"),
    (canonical(8, path=None), "missing path"),
    (bytes(b for b in range(256) if b != 0x0A) * 4, "invalid UTF-8"),
    (b"\x00\x01\x02\xff\xfe garbage", "invalid UTF-8"),
    ('{"ts": "caf\xe9"}'.encode("latin-1"), "not JSON"),
    (b"this is not a log line at all", "unrecognised"),
    (b"", "empty line"),
    (b"   ", "empty line"),
]


def write_corpus(path: Path, good: int) -> tuple[int, int]:
    lines = [canonical(i) for i in range(good)]
    # one line over the 1 MiB limit, and one valid JSON line of almost 1 MiB
    big_body = "x" * (1_048_576 + 10)
    lines.append(canonical(good + 1, body=big_body))
    lines.append(canonical(good + 2, body="y" * 1_000_000))
    lines.extend(line for line, _ in BROKEN)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines), good + 1


@pytest.fixture
def wired(settings: Settings, store: Store) -> Settings:
    return store_settings(settings, store)


def test_every_line_is_an_event_or_a_dead_letter(
    tmp_path: Path, wired: Settings, store: Store
) -> None:
    path = tmp_path / "mixed.log"
    total, good = write_corpus(path, 500)
    pipeline = build_pipeline(wired, "auto")
    writer = BatchWriter(store, max_rows=100)
    pipeline.run(read_file(str(path), max_line_bytes=wired.ingest.max_line_bytes), writer)
    writer.flush()
    assert pipeline.stats.lines == total
    assert store.count("events") == good
    assert store.count("events") + store.count("dead_letters") == total

    reasons = dict(store.query(f"SELECT position, reason FROM {store.database}.dead_letters FINAL"))
    first_broken = total - len(BROKEN) + 1
    for offset, (_line, expected) in enumerate(BROKEN):
        assert expected in reasons[first_broken + offset], (offset, reasons[first_broken + offset])
    oversized = [r for r in reasons.values() if "exceeds" in r]
    assert len(oversized) == 1
    size = store.query(
        f"SELECT raw_size, length(raw) FROM {store.database}.dead_letters FINAL "
        "WHERE reason LIKE '%exceeds%'"
    )
    assert size[0][0] > 1_048_576 and size[0][1] <= 1_048_576


def test_replaying_the_same_file_stores_nothing_twice(
    tmp_path: Path, wired: Settings, store: Store
) -> None:
    path = tmp_path / "again.log"
    total, good = write_corpus(path, 200)
    for _ in range(2):
        pipeline = build_pipeline(wired, "auto")
        writer = BatchWriter(store)
        pipeline.run(read_file(str(path), max_line_bytes=wired.ingest.max_line_bytes), writer)
        writer.flush()
    assert store.count("events") == good
    assert store.count("events") + store.count("dead_letters") == total


def test_dead_letters_are_masked(wired: Settings) -> None:
    pipeline = build_pipeline(wired, "auto")
    line = b'{"truncated": true, "headers": {"authorization": "Bearer sk_live_abcdef123456"'
    dead = pipeline.process(Record("x.log", 1, line, len(line)))
    assert dead.reason.startswith("not JSON")  # type: ignore[union-attr]
    assert "sk_live_abcdef123456" not in dead.raw  # type: ignore[union-attr]
    assert "fp:" in dead.raw  # type: ignore[union-attr]


def test_events_carry_no_secrets(wired: Settings) -> None:
    pipeline = build_pipeline(wired, "canonical")
    line = canonical(
        1,
        query="q=boots&api_key=sk_live_abcdef123456",
        headers={
            "authorization": "Bearer sk_live_abcdef123456",
            "cookie": "sid=sk_live_abcdef123456",
        },
    )
    event = pipeline.process(Record("x.log", 1, line, len(line)))
    assert "sk_live_abcdef123456" not in repr(event)
    assert event.api_key.startswith("fp:")  # type: ignore[union-attr]


def test_old_events_beyond_retention_are_dead_lettered_not_silently_expired(
    wired: Settings,
) -> None:
    pipeline = build_pipeline(wired, "canonical")
    line = canonical(1, ts=int((NOW - 400 * 86_400) * 1000))
    dead = pipeline.process(Record("x.log", 1, line, len(line)))
    assert "before" in dead.reason  # type: ignore[union-attr]
