"""The dispatcher against real peers on 127.0.0.1: retries, restarts, rate limits,
digests, dedup and secrets, each within a few seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from alerts.channels import Channel, build_channel
from alerts.delivery import DeliveryAttempt, Dispatcher, TokenBucket, backoff_s
from alerts.outbox import Outbox
from tests.alerts.receivers import HttpReceiver, SmtpReceiver, free_port

pytestmark = pytest.mark.timeout(10)


class Audit:
    """The audit callback: keeps every attempt, safely across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[DeliveryAttempt] = []

    def __call__(self, attempt: DeliveryAttempt) -> None:
        with self._lock:
            self._rows.append(attempt)

    @property
    def rows(self) -> list[DeliveryAttempt]:
        with self._lock:
            return list(self._rows)


def wait_until(ready: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite")
    yield box
    box.close()


@contextmanager
def running(
    channels: Mapping[str, Channel], outbox: Outbox, **options: Any
) -> Iterator[Dispatcher]:
    dispatcher = Dispatcher(channels, outbox, **options)
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        dispatcher.stop(5.0)


def json_channel(name: str, receiver: HttpReceiver, path: str = "/hook") -> Channel:
    return build_channel(name, receiver.url(path, scheme="json"), timeout_s=3.0)


def test_delivers_to_chat_email_and_webhook_and_audits_each(outbox: Outbox) -> None:
    audit = Audit()
    with SmtpReceiver() as smtp, HttpReceiver() as http:
        email_url = (
            f"mailto://127.0.0.1:{smtp.port}?mode=insecure&from=gw@example.com&to=soc@example.com"
        )
        channels = {
            "email": build_channel("email", email_url),
            "chat": build_channel("chat", http.url("/services/T/B/X", scheme="slack+http")),
            "hook": json_channel("hook", http),
        }
        with running(channels, outbox, audit=audit) as dispatcher:
            for name, body in [
                ("email", "<p>412 logins</p>"),
                ("chat", "**412**"),
                ("hook", "412"),
            ]:
                assert dispatcher.submit("a1", 1, name, "Credential stuffing", body)
            assert smtp.wait_for(1) and http.wait_for(2)
            assert dispatcher.flush(5.0)
            assert wait_until(lambda: len(audit.rows) == 3)
    assert smtp.messages[0]["Subject"] == "Credential stuffing"
    assert sorted(request.path for request in http.requests) == ["/hook", "/services/T/B/X"]
    assert {(row.channel, row.attempt, row.ok, row.digest) for row in audit.rows} == {
        ("email", 1, True, False),
        ("chat", 1, True, False),
        ("hook", 1, True, False),
    }
    assert all(
        row.delivery_id == f"a1:1:{row.channel}" and row.latency_ms > 0 for row in audit.rows
    )
    assert dispatcher.stats.sent == 3 and outbox.pending() == 0


def test_failing_receiver_is_retried_with_backoff_and_delivered_once(outbox: Outbox) -> None:
    audit = Audit()
    base = 0.05
    with HttpReceiver(fail_first=3) as http:
        channels = {"hook": json_channel("hook", http)}
        with running(channels, outbox, audit=audit, backoff_base_s=base) as dispatcher:
            dispatcher.submit("a1", 1, "hook", "title", "body")
            assert http.wait_for(1)
            assert wait_until(lambda: len(audit.rows) == 4)
    assert [(row.attempt, row.ok) for row in audit.rows] == [
        (1, False),
        (2, False),
        (3, False),
        (4, True),
    ]
    assert "500" in audit.rows[0].error
    assert len(http.requests) == 4 and len(http.succeeded()) == 1
    gaps = [later.ts - earlier.ts for earlier, later in pairwise(http.requests)]
    assert all(gap >= base * 2**n * 0.9 for n, gap in enumerate(gaps)), gaps
    assert dispatcher.stats.failed_attempts == 3 and dispatcher.stats.sent == 1


def test_gives_up_after_max_attempts_and_keeps_the_message(outbox: Outbox) -> None:
    audit = Audit()
    with HttpReceiver(fail_first=100) as http:
        channels = {"hook": json_channel("hook", http)}
        options: dict[str, Any] = {"audit": audit, "max_attempts": 3, "backoff_base_s": 0.01}
        with running(channels, outbox, **options) as dispatcher:
            dispatcher.submit("a1", 1, "hook", "title", "body")
            assert wait_until(lambda: len(audit.rows) == 3)
            assert wait_until(lambda: outbox.pending() == 0)
    (dead,) = outbox.dead()
    assert dead.id == "a1:1:hook" and dead.attempts == 3 and "500" in dead.last_error
    assert [row.ok for row in audit.rows] == [False, False, False]
    assert dispatcher.stats.gave_up == 1 and len(http.requests) == 3


def test_a_rejected_request_is_not_retried(outbox: Outbox) -> None:
    audit = Audit()
    with HttpReceiver(fail_first=100, fail_status=404) as http:
        channels = {"chat": build_channel("chat", http.url("/gone", scheme="slack+http"))}
        with running(channels, outbox, audit=audit, backoff_base_s=0.01) as dispatcher:
            dispatcher.submit("a1", 1, "chat", "title", "body")
            assert wait_until(lambda: len(outbox.dead()) == 1)
    assert [(row.attempt, row.ok) for row in audit.rows] == [(1, False)]


def test_receiver_down_across_a_restart_gets_the_message_exactly_once(tmp_path: Path) -> None:
    path, port, audit = tmp_path / "outbox.sqlite", free_port(), Audit()
    url = f"json://127.0.0.1:{port}/hook"
    first_outbox = Outbox(path)
    with running({"hook": build_channel("hook", url)}, first_outbox, audit=audit) as dispatcher:
        assert dispatcher.submit("a1", 1, "hook", "title", "body")
        assert wait_until(lambda: len(audit.rows) >= 1)
    first_outbox.close()
    assert not audit.rows[0].ok

    second_outbox = Outbox(path)
    assert second_outbox.pending() == 1
    with HttpReceiver(port=port) as http:
        channels = {"hook": build_channel("hook", url)}
        with running(channels, second_outbox, audit=audit, backoff_base_s=0.05) as dispatcher:
            assert not dispatcher.submit("a1", 1, "hook", "title", "body")  # still pending
            assert http.wait_for(1)
            assert dispatcher.flush(5.0)
        time.sleep(0.2)  # a duplicate would have arrived by now
    assert len(http.requests) == 1 and http.requests[0].json()["message"] == "body"
    assert second_outbox.pending() == 0
    second_outbox.close()


def test_flooded_channel_sends_one_digest_while_others_flow(outbox: Outbox) -> None:
    audit = Audit()
    with HttpReceiver() as flood, HttpReceiver() as calm:
        channels = {"flood": json_channel("flood", flood), "calm": json_channel("calm", calm)}
        rates = {"flood": 30.0, "calm": 600.0}  # flood: a token every 2 s after the burst
        with running(
            channels, outbox, audit=audit, rate_per_minute=rates, digest_after=5
        ) as dispatcher:
            for n in range(30):
                dispatcher.submit(f"f{n}", 1, "flood", f"flood alert {n}", f"body {n}")
            started = time.monotonic()
            for n in range(3):
                dispatcher.submit(f"c{n}", 1, "calm", f"calm alert {n}", "body")
            assert calm.wait_for(3, timeout_s=1.0)
            calm_s = time.monotonic() - started
            assert flood.wait_for(6, timeout_s=5.0)
            assert dispatcher.flush(2.0)
            assert wait_until(lambda: len(audit.rows) == 33)
            time.sleep(0.1)
    assert calm_s < 1.0
    payloads = [request.json() for request in flood.requests]
    singles, digest = payloads[:5], payloads[5]
    assert len(payloads) == 6
    assert [p["title"] for p in singles] == [f"flood alert {n}" for n in range(5)]
    assert digest["message"].startswith("25 alerts while this channel was rate-limited:")
    assert all(f"- flood alert {n}\n" in digest["message"] for n in range(5, 30))
    assert digest["message"].endswith("body 5")
    digested = [row for row in audit.rows if row.digest]
    assert len(digested) == 25 and all(row.ok and row.channel == "flood" for row in digested)
    assert dispatcher.stats.digests == 1 and dispatcher.stats.sent == 33
    assert outbox.pending() == 0


def test_a_slow_channel_does_not_hold_up_another(outbox: Outbox) -> None:
    with HttpReceiver(delay_s=1.5) as slow, HttpReceiver() as fast:
        channels = {"slow": json_channel("slow", slow), "fast": json_channel("fast", fast)}
        with running(channels, outbox) as dispatcher:
            dispatcher.submit("a1", 1, "slow", "title", "body")
            time.sleep(0.1)  # the slow send is in flight
            started = time.monotonic()
            dispatcher.submit("a1", 1, "fast", "title", "body")
            assert fast.wait_for(1, timeout_s=1.0)
            assert time.monotonic() - started < 0.5
            assert slow.wait_for(1, timeout_s=3.0)


def test_same_alert_version_and_channel_is_delivered_once(outbox: Outbox) -> None:
    with HttpReceiver() as http:
        with running({"hook": json_channel("hook", http)}, outbox) as dispatcher:
            assert dispatcher.submit("a1", 1, "hook", "title", "body")
            assert not dispatcher.submit("a1", 1, "hook", "title", "body")
            assert http.wait_for(1) and dispatcher.flush(5.0)
            assert not dispatcher.submit("a1", 1, "hook", "title", "body")  # after delivery too
            assert dispatcher.submit("a1", 2, "hook", "title v2", "body")
            assert http.wait_for(2) and dispatcher.flush(5.0)
        time.sleep(0.1)
    assert [request.json()["title"] for request in http.requests] == ["title", "title v2"]


def test_unknown_channel_is_refused(outbox: Outbox) -> None:
    dispatcher = Dispatcher({"console": build_channel("console", "console")}, outbox)
    with pytest.raises(ValueError, match="unknown alert channel 'pager'"):
        dispatcher.submit("a1", 1, "pager", "title", "body")


def test_secrets_never_reach_the_audit_trail(outbox: Outbox) -> None:
    audit, port = Audit(), free_port()
    channels = {
        "hook": build_channel(
            "hook", f"json://gw:s3cretPass@127.0.0.1:{port}/T0kenValue123?token=T0kenValue123"
        ),
        "chat": build_channel("chat", f"slack+http://127.0.0.1:{port}/services/T0kenValue123"),
    }
    with running(channels, outbox, audit=audit, max_attempts=1) as dispatcher:
        dispatcher.submit("a1", 1, "hook", "title", "body")
        dispatcher.submit("a1", 1, "chat", "title", "body")
        assert wait_until(lambda: len(audit.rows) == 2)
    assert all(not row.ok and row.error for row in audit.rows)
    texts = [row.error for row in audit.rows] + [dead.last_error for dead in outbox.dead()]
    assert all("s3cretPass" not in text and "T0kenValue123" not in text for text in texts)


def test_a_failing_audit_does_not_stop_delivery(outbox: Outbox) -> None:
    def broken_audit(attempt: DeliveryAttempt) -> None:
        raise RuntimeError("store is down")

    with HttpReceiver() as http:
        channels = {"hook": json_channel("hook", http)}
        with running(channels, outbox, audit=broken_audit) as dispatcher:
            for n in range(3):
                dispatcher.submit(f"a{n}", 1, "hook", f"title {n}", "body")
            assert http.wait_for(3) and dispatcher.flush(5.0)
    assert outbox.pending() == 0


def test_flush_times_out_when_nothing_delivers(outbox: Outbox) -> None:
    dispatcher = Dispatcher({"console": build_channel("console", "console")}, outbox)
    dispatcher.submit("a1", 1, "console", "title", "body")
    assert not dispatcher.flush(0.05)
    assert outbox.pending() == 1


def test_messages_for_a_removed_channel_are_kept_and_do_not_block_flush(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    Dispatcher({"old": build_channel("old", "console")}, outbox).submit("a1", 1, "old", "t", "b")
    with (
        HttpReceiver() as http,
        running({"hook": json_channel("hook", http)}, outbox) as dispatcher,
    ):
        assert "channel old, which is not configured" in caplog.text
        dispatcher.submit("a2", 1, "hook", "title", "body")
        assert http.wait_for(1) and dispatcher.flush(2.0)
    assert outbox.pending_by_channel() == {"old": 1}


def test_backoff_doubles_with_bounded_jitter_and_a_cap() -> None:
    delays = [backoff_s("a1:1:ops", n, base_s=1.0, max_s=60.0) for n in range(1, 12)]
    for n, delay in enumerate(delays[:6]):
        assert 2**n <= delay < 2**n * 1.5
    assert delays[-1] == 60.0 and max(delays) == 60.0
    assert backoff_s("a1:1:ops", 3, base_s=1.0, max_s=60.0) != backoff_s(
        "a2:1:ops", 3, base_s=1.0, max_s=60.0
    )


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_s(0.25) == pytest.approx(0.75)
    assert bucket.take(1.0) and not bucket.take(1.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
