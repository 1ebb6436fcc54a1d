"""Delivery: outbox messages to their channels, on a thread and event loop of its own.

``submit`` only writes to the outbox and wakes the worker, so detection never waits for
the network. Each channel has its own task, so one slow or failing channel delays no
other. A channel takes ``digest_after`` messages at once and then ``rate_per_minute``;
what is due beyond that goes out as one digest when the next token frees. A failed
send is tried again after an exponential backoff with jitter, up to ``max_attempts``,
then kept in the outbox's dead table. Every attempt, sent or failed, is handed to the
``audit`` callback.

>>> [round(backoff_s("a1:1:ops", n, base_s=1.0, max_s=300.0), 2) for n in (1, 2, 3, 12)]
[1.02, 2.56, 5.81, 300.0]
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from alerts.channels import Channel, DeliveryError, Format, mask_urls
from alerts.outbox import Delivery, Outbox

log = logging.getLogger(__name__)

DIGEST_MAX = 500  # messages combined into one digest at most; the rest go in the next
_DIGEST_TITLES = 50  # titles listed in a digest body
_IDLE_POLL_S = 1.0  # longest nap between outbox checks (covers an injected clock too)


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One row of the audit trail: one try to deliver one message to one channel."""

    ts: float
    delivery_id: str
    alert_id: str
    version: int
    channel: str
    attempt: int
    ok: bool
    error: str
    latency_ms: float
    digest: bool


@dataclass(slots=True)
class ChannelStats:
    sent: int = 0  # messages delivered, each one in a digest included
    failed_attempts: int = 0
    gave_up: int = 0
    digests: int = 0  # digest messages delivered


@dataclass(slots=True)
class DispatchStats:
    """Counters, written on the dispatcher's thread only."""

    sent: int = 0
    failed_attempts: int = 0
    gave_up: int = 0
    digests: int = 0
    per_channel: dict[str, ChannelStats] = field(default_factory=dict)

    def add(
        self, channel: str, *, sent: int = 0, failed: int = 0, gave_up: int = 0, digests: int = 0
    ) -> None:
        one = self.per_channel.setdefault(channel, ChannelStats())
        for counters in (self, one):
            counters.sent += sent
            counters.failed_attempts += failed
            counters.gave_up += gave_up
            counters.digests += digests


def backoff_s(delivery_id: str, attempt: int, *, base_s: float, max_s: float) -> float:
    """The wait after failed attempt ``attempt`` (from 1): ``base_s · 2^(attempt-1)``,
    stretched by up to half by a jitter drawn from the id (so retries of many messages
    spread out, and the same message always waits the same), never above ``max_s``."""
    jitter = zlib.crc32(f"{delivery_id}:{attempt}".encode()) / 2**32
    return min(max_s, base_s * 2.0 ** min(attempt - 1, 64) * (1.0 + jitter / 2))


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate_per_s``; times are monotonic."""

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_s(self, now: float) -> float:
        """Seconds until a token is free."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate_per_s)

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now


def digest_message(deliveries: list[Delivery], fmt: Format) -> tuple[str, str]:
    """One message for many: how many, each title, then the first message in full.

    >>> from alerts.outbox import Delivery
    >>> batch = [Delivery.of(f"a{n}", 1, "ops", f"alert {n}", f"body {n}", created_ts=0.0)
    ...          for n in range(2)]
    >>> print(digest_message(batch, "text")[1])
    2 alerts while this channel was rate-limited:
    - alert 0
    - alert 1
    <BLANKLINE>
    body 0
    """
    count = len(deliveries)
    title = f"Gatewatch: {count} alerts (digest; the channel was rate-limited)"
    titles = [delivery.title for delivery in deliveries[:_DIGEST_TITLES]]
    more = count - len(titles)
    first = deliveries[0].body
    if fmt == "html":
        items = "".join(f"<li>{html.escape(one)}</li>" for one in titles)
        if more:
            items += f"<li>… and {more} more</li>"
        head = f"<p>{count} alerts while this channel was rate-limited:</p>"
        return title, f"{head}<ul>{items}</ul><hr>{first}"
    lines = [f"{count} alerts while this channel was rate-limited:"]
    lines += [f"- {one}" for one in titles]
    if more:
        lines.append(f"- … and {more} more")
    return title, "\n".join(lines) + f"\n\n{first}"


class _ChannelWorker:
    """Sends one channel's due messages, one at a time, within its rate."""

    def __init__(self, dispatcher: Dispatcher, channel: Channel, rate_per_minute: float) -> None:
        self.dispatcher = dispatcher
        self.channel = channel
        self.name = channel.name
        loop = asyncio.get_running_loop()
        self.bucket = TokenBucket(rate_per_minute / 60.0, dispatcher.digest_after, loop.time())
        self.wake = asyncio.Event()

    async def run(self) -> None:
        stopping = self.dispatcher._stopping
        while not stopping.is_set():
            try:
                await self._step()
            except Exception:
                # A broken outbox or audit must not end this channel's deliveries.
                log.exception("alert channel %s: delivery step failed", self.name)
                await _sleep_unless(stopping, _IDLE_POLL_S)

    async def _step(self) -> None:
        dispatcher = self.dispatcher
        loop = asyncio.get_running_loop()
        due = dispatcher.outbox.due(dispatcher.clock(), limit=1, channel=self.name)
        if not due:
            await self._nap()
            return
        if self.bucket.take(loop.time()):
            await self._send(due[0])
            return
        # Flooded: wait for the next token, then send everything due as one message.
        await _sleep_unless(dispatcher._stopping, self.bucket.wait_s(loop.time()))
        if dispatcher._stopping.is_set() or not self.bucket.take(loop.time()):
            return
        due = dispatcher.outbox.due(dispatcher.clock(), limit=DIGEST_MAX, channel=self.name)
        if len(due) > 1:
            await self._send_digest(due)
        elif due:
            await self._send(due[0])

    async def _nap(self) -> None:
        """Until a submit wakes us or the earliest retry is due."""
        dispatcher = self.dispatcher
        earliest = dispatcher.outbox.next_try(self.name)
        timeout = _IDLE_POLL_S
        if earliest is not None:
            timeout = min(timeout, max(0.0, earliest - dispatcher.clock()))
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except TimeoutError:
            return
        self.wake.clear()

    async def _attempt(self, title: str, body: str) -> tuple[str | None, bool, float]:
        """``(error or None, whether a retry can help, latency in ms)``."""
        started = time.perf_counter()
        error: str | None
        try:
            await self.channel.send(title, body)
        except DeliveryError as exc:
            error, retriable = str(exc), exc.retriable
        except Exception as exc:
            error, retriable = mask_urls(f"{self.name}: {type(exc).__name__}: {exc}"), True
        else:
            error, retriable = None, True
        return error, retriable, (time.perf_counter() - started) * 1000.0

    async def _send(self, delivery: Delivery) -> None:
        error, retriable, latency_ms = await self._attempt(delivery.title, delivery.body)
        self.dispatcher._settle(
            delivery, error, retriable=retriable, latency_ms=latency_ms, digest=False
        )

    async def _send_digest(self, deliveries: list[Delivery]) -> None:
        title, body = digest_message(deliveries, self.channel.format)
        error, retriable, latency_ms = await self._attempt(title, body)
        if error is None:
            self.dispatcher.stats.add(self.name, digests=1)
            log.info("alert channel %s: sent %d alerts as one digest", self.name, len(deliveries))
        for delivery in deliveries:
            self.dispatcher._settle(
                delivery, error, retriable=retriable, latency_ms=latency_ms, digest=True
            )


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return


class Dispatcher:
    """Delivers outbox entries on its own thread and asyncio loop; submit() never
    blocks on the network.

    ``start`` delivers whatever the outbox already holds (from before a restart) as well
    as what is submitted later; ``stop`` lets in-flight sends finish and leaves the rest
    in the outbox for the next start.
    """

    def __init__(
        self,
        channels: Mapping[str, Channel],
        outbox: Outbox,
        *,
        audit: Callable[[DeliveryAttempt], None] = lambda a: None,
        max_attempts: int = 12,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 300.0,
        rate_per_minute: float | Mapping[str, float] = 20.0,
        digest_after: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(rate_per_minute, Mapping):
            missing = sorted(set(channels) - set(rate_per_minute))
            if missing:
                raise ValueError(f"rate_per_minute names no rate for channels {missing}")
        self.channels = dict(channels)
        self.outbox = outbox
        self.audit = audit
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.rate_per_minute = rate_per_minute
        self.digest_after = digest_after
        self.clock = clock
        self.stats = DispatchStats()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: dict[str, _ChannelWorker] = {}
        self._stopping = asyncio.Event()

    def submit(self, alert_id: str, version: int, channel: str, title: str, body: str) -> bool:
        """Persist one message for ``channel`` and wake its sender; False when this
        alert version was already submitted to that channel."""
        if channel not in self.channels:
            known = ", ".join(sorted(self.channels)) or "none"
            raise ValueError(f"unknown alert channel {channel!r} (known: {known})")
        delivery = Delivery.of(alert_id, version, channel, title, body, created_ts=self.clock())
        if not self.outbox.put(delivery):
            return False
        self._wake(channel)
        return True

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the dispatcher was already started")
        for name, count in self.outbox.pending_by_channel().items():
            if name not in self.channels:
                log.warning(
                    "%d alert messages wait in the outbox for channel %s, which is not"
                    " configured; they are kept until it is",
                    count,
                    name,
                )
        self._thread = threading.Thread(target=self._run, name="gatewatch-alerts", daemon=True)
        self._thread.start()
        self._ready.wait(10.0)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the sends in flight (within ``timeout_s``) and end the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has already ended
            loop.call_soon_threadsafe(self._request_stop)
        thread.join(timeout_s)
        if thread.is_alive():
            log.warning(
                "alert delivery did not stop within %.1f s; unsent messages stay in the outbox",
                timeout_s,
            )

    def flush(self, timeout_s: float) -> bool:
        """Wait until nothing in the outbox is due (retries scheduled later do not
        count); False when ``timeout_s`` ran out first."""
        deadline = time.monotonic() + timeout_s
        while any(self.outbox.due(self.clock(), limit=1, channel=name) for name in self.channels):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _request_stop(self) -> None:
        self._stopping.set()
        for worker in self._workers.values():
            worker.wake.set()

    def _wake(self, channel: str) -> None:
        loop = self._loop
        worker = self._workers.get(channel)
        if loop is None or worker is None:
            return  # not started: start() delivers it
        with contextlib.suppress(RuntimeError):  # stopped: it waits for the next start
            loop.call_soon_threadsafe(worker.wake.set)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        for name, channel in self.channels.items():
            rate = (
                self.rate_per_minute[name]
                if isinstance(self.rate_per_minute, Mapping)
                else self.rate_per_minute
            )
            self._workers[name] = _ChannelWorker(self, channel, rate)
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        try:
            await asyncio.gather(*(worker.run() for worker in self._workers.values()))
        finally:
            self._loop = None

    def _settle(
        self,
        delivery: Delivery,
        error: str | None,
        *,
        retriable: bool,
        latency_ms: float,
        digest: bool,
    ) -> None:
        """Record one attempt's outcome in the outbox, the stats and the audit trail."""
        attempt = delivery.attempts + 1
        name = delivery.channel
        if error is None:
            self.outbox.done(delivery.id)
            self.stats.add(name, sent=1)
        elif attempt >= self.max_attempts or not retriable:
            self.outbox.give_up(delivery.id, error)
            self.stats.add(name, failed=1, gave_up=1)
            log.warning(
                "alert %s to %s given up after %d attempts: %s",
                delivery.alert_id,
                name,
                attempt,
                error,
            )
        else:
            wait = backoff_s(
                delivery.id, attempt, base_s=self.backoff_base_s, max_s=self.backoff_max_s
            )
            self.outbox.retry(delivery.id, next_try_ts=self.clock() + wait, error=error)
            self.stats.add(name, failed=1)
            log.info(
                "alert %s to %s failed (attempt %d): %s", delivery.alert_id, name, attempt, error
            )
        record = DeliveryAttempt(
            ts=self.clock(),
            delivery_id=delivery.id,
            alert_id=delivery.alert_id,
            version=delivery.version,
            channel=name,
            attempt=attempt,
            ok=error is None,
            error=error or "",
            latency_ms=latency_ms,
            digest=digest,
        )
        try:
            self.audit(record)
        except Exception:
            log.exception("alert audit failed for delivery %s", delivery.id)

    def __repr__(self) -> str:
        return (
            f"Dispatcher(channels={sorted(self.channels)!r}, max_attempts={self.max_attempts!r},"
            f" backoff_base_s={self.backoff_base_s!r}, backoff_max_s={self.backoff_max_s!r},"
            f" rate_per_minute={self.rate_per_minute!r}, digest_after={self.digest_after!r})"
        )
