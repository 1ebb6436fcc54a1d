"""The outbox: durable, deduplicated, ordered by due time, safe across threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.outbox import Delivery, Outbox

pytestmark = pytest.mark.timeout(10)


def message(alert_id: str = "a1", version: int = 1, channel: str = "ops") -> Delivery:
    return Delivery.of(alert_id, version, channel, f"title {alert_id}", "body", created_ts=100.0)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "data" / "outbox.sqlite")
    yield box
    box.close()


def test_id_is_alert_version_channel() -> None:
    assert message("a7", 3, "email").id == "a7:3:email"


def test_put_dedups_pending_delivered_and_dead(outbox: Outbox) -> None:
    first, second, third = message("a1"), message("a2"), message("a3")
    assert outbox.put(first) and not outbox.put(first)
    outbox.put(second)
    outbox.put(third)
    outbox.done(second.id)
    outbox.give_up(third.id, "HTTP 404")
    assert not outbox.put(second) and not outbox.put(third)
    assert outbox.put(message("a2", version=2))  # a new version is a new message
    assert outbox.pending() == 2


def test_due_orders_by_time_and_filters_by_channel(outbox: Outbox) -> None:
    for alert_id, channel in [("a1", "ops"), ("a2", "email"), ("a3", "ops")]:
        outbox.put(message(alert_id, channel=channel))
    outbox.retry("a1:1:ops", next_try_ts=50.0, error="HTTP 500")
    assert [d.id for d in outbox.due(10.0)] == ["a2:1:email", "a3:1:ops"]
    assert [d.id for d in outbox.due(60.0)] == ["a2:1:email", "a3:1:ops", "a1:1:ops"]
    assert [d.id for d in outbox.due(60.0, channel="ops")] == ["a3:1:ops", "a1:1:ops"]
    assert [d.id for d in outbox.due(60.0, limit=1)] == ["a2:1:email"]
    assert outbox.next_try("ops") == 0.0 and outbox.next_try("nobody") is None


def test_retry_counts_attempts_and_keeps_the_error(outbox: Outbox) -> None:
    outbox.put(message())
    outbox.retry("a1:1:ops", next_try_ts=5.0, error="timeout")
    outbox.retry("a1:1:ops", next_try_ts=9.0, error="HTTP 502")
    (delivery,) = outbox.due(10.0)
    assert (delivery.attempts, delivery.next_try_ts, delivery.last_error) == (2, 9.0, "HTTP 502")


def test_give_up_moves_the_message_to_dead(outbox: Outbox) -> None:
    outbox.put(message())
    outbox.retry("a1:1:ops", next_try_ts=5.0, error="timeout")
    outbox.give_up("a1:1:ops", "HTTP 500")
    assert outbox.pending() == 0 and outbox.due(1e12) == []
    (dead,) = outbox.dead()
    assert (dead.id, dead.attempts, dead.last_error, dead.body) == (
        "a1:1:ops",
        2,
        "HTTP 500",
        "body",
    )


def test_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    first = Outbox(path)
    first.put(message("a1"))
    first.put(message("a2"))
    first.done("a2:1:ops")
    first.close()
    again = Outbox(path)
    assert [d.id for d in again.due(1e12)] == ["a1:1:ops"]
    assert not again.put(message("a2"))  # delivered before the restart
    again.close()


def test_file_is_wal_and_fully_synchronous(outbox: Outbox) -> None:
    with sqlite3.connect(outbox.path) as peek:
        assert peek.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert outbox._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_old_delivered_ids_are_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    first = Outbox(path)
    first.put(message())
    first.done("a1:1:ops")
    first.close()
    again = Outbox(path, keep_delivered_s=-1.0)  # every delivered id is past keeping
    assert again.put(message())
    again.close()


def test_threads_share_one_outbox(outbox: Outbox) -> None:
    def submit(worker: int) -> None:
        for n in range(50):
            outbox.put(message(f"w{worker}-{n}"))
            outbox.put(message(f"w{worker}-{n}"))  # a duplicate from a racing caller

    threads = [threading.Thread(target=submit, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outbox.pending() == 200
