"""Kafka -> ClickHouse, at least once: nothing lost, nothing stored twice.

One consumer group reads several topics, each in its own log format. Every fetched
batch goes through the topic's pipeline into the store, and only once the rows are in
ClickHouse (and dead letters on the dead-letter topic, when there is one) are the
offsets committed. A crash between the insert and the commit therefore replays records
that are already stored; that is the price of never losing one.

Why replays store nothing twice: every row carries a deterministic identity, its
``source`` (``kafka:TOPIC/PARTITION``) and ``position`` (the offset), and the events and
dead-letter tables are ``ReplacingMergeTree`` tables whose sorting keys contain it. A
replayed record parses into the same row with the same key (``client_ip`` and ``ts``
come from the line itself), so it collapses into the stored one when parts merge, and
``FINAL`` reads are exact before that.

The alternative, ClickHouse's insert deduplication tokens, drops a block only when an
identical block (same rows, same order, same token) was inserted before. A replay
rarely reproduces the batch: after a crash or a rebalance, ``getmany`` cuts batches
at other offsets, another consumer may own the partition, several partitions mix in
one batch, and the writer flushes on time as well as size. The token window is
also finite (``replicated_deduplication_window``) and the embedded chDB is not
replicated, where the tokens are off by default. Keying rows on where they came from
holds whatever the batch boundaries, across consumers and processes, for as long as
the data is kept.

Ordering in one batch: poll -> pause the assigned partitions -> parse and insert in a
worker thread (heartbeats continue on the event loop) -> produce dead letters -> commit
offset + 1 per partition -> resume. A rebalance waits for the batch in progress
(the revoke callback takes the same lock), commits what was stored, and only then lets
the partitions go; a batch fetched before a rebalance but not yet started is dropped
and re-read from the committed offsets by the partition's new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError

from detectors.engine import DetectionEngine
from gatewatch.errors import ConfigError, SourceError, StoreError
from gatewatch.event import DeadLetter, Event
from gatewatch.finding import Finding
from gatewatch.gc_tuning import tune_for_streaming
from gatewatch.metrics import Metrics
from gatewatch.pipeline import Pipeline
from gatewatch.settings import Settings
from gatewatch.store.checkpoints import Checkpoints, checkpoint_key
from gatewatch.store.client import Store
from gatewatch.store.writer import BatchWriter
from gatewatch.wiring import (
    build_alerting,
    build_engine,
    build_masker,
    build_pipeline,
    detector_params,
    ingest_salt,
    load_suppressions,
    open_store,
)
from ingest.normalise.secrets import SecretMasker
from ingest.parsers import UnknownFormatError
from ingest.sources.base import Record
from ingest.sources.kafka import build_consumer, build_producer, source_name

log = logging.getLogger(__name__)
_SUPPRESSIONS_EVERY_S = 60.0

POLL_TIMEOUT_MS = 1_000
# getmany waits without a bound while a rebalance is in progress; give up on a poll then.
POLL_DEADLINE_S = 10.0
START_TIMEOUT_S = 60.0
COMMIT_TIMEOUT_S = 30.0
PRODUCE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
ERROR_BACKOFF_S = 1.0
STORE_ATTEMPTS = 5
STORE_BACKOFF_S = 1.0
MAX_KEY_CHARS = 1_024

Batch = Mapping[Any, Sequence[Any]]  # TopicPartition -> [ConsumerRecord] (aiokafka is untyped)


class KafkaIngestError(SourceError):
    """Kafka cannot be consumed or a batch cannot be acknowledged; says where and why."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        self.retriable = retriable
        super().__init__(message)


@dataclasses.dataclass(slots=True)
class IngestStats:
    """What one run consumed. ``dropped`` records were fetched just before a rebalance
    and left for the partition's next owner, so they are not in the other counts."""

    records: int = 0
    events: int = 0
    dead_letters: int = 0
    batches: int = 0
    dropped: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class KafkaDeadLetter:
    """A dead letter with the Kafka coordinates of its record."""

    topic: str
    partition: int
    offset: int
    dead: DeadLetter

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "key": self.dead.key,
                "reason": self.dead.reason,
                "raw": self.dead.raw,
            }
        )


@dataclasses.dataclass(slots=True)
class BatchResult:
    records: int = 0
    events: int = 0
    dead: list[KafkaDeadLetter] = dataclasses.field(default_factory=list)
    next_offsets: dict[Any, int] = dataclasses.field(default_factory=dict)


class BatchStore:
    """Turns fetched records into stored rows. Runs in a worker thread, one batch at a
    time, so the pipelines and the writer are never used concurrently."""

    def __init__(
        self,
        pipelines: Mapping[str, Pipeline],
        writer: BatchWriter,
        masker: SecretMasker,
        metrics: Metrics,
        *,
        engine: DetectionEngine | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.pipelines = pipelines
        self.writer = writer
        self.masker = masker
        self.metrics = metrics
        self._sleep = sleep

    def store(self, batch: Batch) -> BatchResult:
        result = BatchResult()
        for tp, messages in batch.items():
            process = self.pipelines[tp.topic].process
            source = source_name(tp.topic, tp.partition)
            dead_before = len(result.dead)
            events: list[Event] = []
            keep = events.append
            for message in messages:
                value: bytes = message.value or b""  # a tombstone is an empty line
                processed = process(Record(source, message.offset, value, len(value)))
                if isinstance(processed, DeadLetter):
                    dead = dataclasses.replace(processed, key=self._key(message.key))
                    self.writer.add_dead_letter(dead)
                    result.dead.append(
                        KafkaDeadLetter(tp.topic, tp.partition, message.offset, dead)
                    )
                else:
                    keep(processed)
            self.writer.add_events(events)
            result.events += len(events)
            if self.engine is not None:
                detect = self.engine.process
                for event in events:
                    detect(event)
            if messages:
                result.records += len(messages)
                result.next_offsets[tp] = messages[-1].offset + 1
                self.metrics.consumed.labels(source).inc(len(messages))
                if len(result.dead) > dead_before:
                    self.metrics.dead_lettered.labels(source).inc(len(result.dead) - dead_before)
        self.flush()
        return result

    def flush(self) -> None:
        """Write what is buffered; retry a store that may come back, a bounded number
        of times. Partly written batches are safe to write again (rows collapse)."""
        delay = STORE_BACKOFF_S
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                self.writer.flush()
            except StoreError as exc:
                if not exc.retriable or attempt == STORE_ATTEMPTS:
                    raise
                log.warning(
                    "store write failed (attempt %d of %d), retrying in %.0f s: %s",
                    attempt,
                    STORE_ATTEMPTS,
                    delay,
                    exc,
                )
                self._sleep(delay)
                delay *= 2
            else:
                return

    @property
    def pending(self) -> int:
        return self.writer.pending

    @property
    def holds_events(self) -> bool:
        return self.engine is not None and self.engine.holding > 0

    def release_held_events(self) -> None:
        if self.engine is not None:
            self.engine.release_held()

    def finish_detection(self) -> None:
        if self.engine is not None:
            self.engine.finish()

    def _key(self, key: bytes | None) -> str:
        if not key:
            return ""
        return self.masker.text(key.decode("utf-8", "backslashreplace")[:MAX_KEY_CHARS])


class OffsetCommitter:
    """Commits offset + 1 of every stored partition, and keeps what a failed commit left
    for the next attempt (a later offset of the same partition supersedes it)."""

    def __init__(self, consumer: Any, *, timeout: float = COMMIT_TIMEOUT_S) -> None:
        self._consumer = consumer
        self._timeout = timeout
        self._pending: dict[Any, int] = {}

    @property
    def pending(self) -> Mapping[Any, int]:
        return self._pending

    def stored(self, next_offsets: Mapping[Any, int]) -> None:
        for tp, offset in next_offsets.items():
            self._pending[tp] = max(offset, self._pending.get(tp, 0))

    def forget(self, partitions: Iterable[Any]) -> None:
        for tp in partitions:
            self._pending.pop(tp, None)

    async def commit(self) -> bool:
        """Commit what is pending; True when nothing is left to commit."""
        assigned = self._consumer.assignment()
        gone = [tp for tp in self._pending if tp not in assigned]
        if gone:
            # No longer ours: the new owner re-reads them from the last commit and the
            # rows it stores again collapse into these.
            log.info("not committing %d partitions that are no longer assigned", len(gone))
            self.forget(gone)
        if not self._pending:
            return True
        offsets = dict(self._pending)
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), self._timeout)
        except CommitFailedError as exc:
            log.warning(
                "commit of %s failed because the group rebalanced; their next owner "
                "re-reads them (stored rows collapse): %s",
                _describe(offsets),
                exc,
            )
            self._pending.clear()
            return False
        except TimeoutError:
            log.warning("commit of %s timed out; retrying after the next batch", _describe(offsets))
            return False
        except KafkaError as exc:
            if not exc.retriable:
                raise KafkaIngestError(f"commit of {_describe(offsets)} failed: {exc}") from exc
            log.warning("commit of %s failed, retrying: %s", _describe(offsets), exc)
            return False
        for tp, offset in offsets.items():
            if self._pending.get(tp) == offset:
                del self._pending[tp]
        log.debug("committed %s", _describe(offsets))
        return not self._pending


class DeadLetterTopic:
    """Produces dead letters (JSON) to a topic and waits until the broker has them."""

    def __init__(self, producer: Any, topic: str, *, timeout: float = PRODUCE_TIMEOUT_S) -> None:
        self._producer = producer
        self.topic = topic
        self._timeout = timeout

    async def publish(self, letters: Sequence[KafkaDeadLetter]) -> None:
        try:
            await asyncio.wait_for(self._publish(letters), self._timeout)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaIngestError(
                f"producing {len(letters)} dead letters to {self.topic} failed: {exc!r}",
                retriable=True,
            ) from exc

    async def _publish(self, letters: Sequence[KafkaDeadLetter]) -> None:
        deliveries = [
            await self._producer.send(
                self.topic, letter.to_json(), key=letter.dead.key.encode() or None
            )
            for letter in letters
        ]
        await asyncio.gather(*deliveries)


class _CommitBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Hands rebalances to the ingest loop (aiokafka awaits these coroutines)."""

    def __init__(self, ingest: KafkaIngest) -> None:
        self._ingest = ingest

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self._ingest.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        await self._ingest.partitions_assigned(assigned)


class KafkaIngest:
    """One consumer group over several topics, each topic with its own log format."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        metrics: Metrics,
        consumer: Any,
        dead_letter_producer: Any = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.stats = IngestStats()
        masker = build_masker(settings)
        writer = BatchWriter(
            store,
            max_rows=settings.storage.batch_max_rows,
            # Every batch ends with a flush, so rows never wait long; a timed flush in the
            # middle of one would only split its insert.
            max_seconds=math.inf,
            on_flush=lambda events, _dead: metrics.stored.inc(events),
        )

        self._store = store
        self._alerting = build_alerting(settings, store, writer)
        self._suppressions_due = time.monotonic() + _SUPPRESSIONS_EVERY_S
        alerting = self._alerting

        def store_finding(finding: Finding) -> None:
            metrics.findings.labels(finding.kind, finding.severity.value).inc()
            writer.add_finding(finding)
            if alerting is not None:
                alerting.on_finding(finding)

        engine = build_engine(settings, store_finding)
        metrics.watch(engine)
        self._batches = BatchStore(
            _pipelines(settings, masker), writer, masker, metrics, engine=engine
        )
        # Taken by a batch from insert to commit, and by the revoke callback, so
        # partitions never leave while their records are stored but not committed.
        self._lock = asyncio.Lock()
        self._reload: tuple[Callable[[], Settings], asyncio.Event] | None = None
        self._revocations = 0
        self._checkpoints: Checkpoints | None = None
        every = settings.detection.checkpoint_every_s
        if every > 0 and any(d.keeps_state() for d in engine.detectors):
            key = checkpoint_key(ingest_salt(settings))
            self._checkpoints = Checkpoints(store, key, settings.kafka.group_id)
        self._checkpoint_every_s = every
        self._checkpoint_due = time.monotonic() + every
        self._owned: set[str] = set()  # sources (partitions) this consumer has state for
        self._consumer = consumer
        self._committer = OffsetCommitter(consumer)
        self._producer = dead_letter_producer
        topic = settings.kafka.dead_letter_topic
        self._dead_letter_topic = (
            DeadLetterTopic(dead_letter_producer, topic)
            if dead_letter_producer is not None and topic
            else None
        )

    def reload_with(self, load: Callable[[], Settings], requested: asyncio.Event) -> None:
        """Re-read the settings with ``load`` whenever ``requested`` is set."""
        self._reload = (load, requested)

    async def apply_reload(self) -> None:
        """Apply new detector params between batches (never during one). Events read
        before the reload but still held for lateness are judged first, under the
        params in force when they arrived."""
        if self._reload is None or not self._reload[1].is_set():
            return
        load, requested = self._reload
        requested.clear()
        engine = self._batches.engine
        try:
            settings = load()
        except ConfigError as exc:
            log.error("config reload rejected, keeping the running config: %s", exc)
            return
        if engine is not None:
            async with self._lock:
                await asyncio.to_thread(self._batches.release_held_events)
                engine.reconfigure(detector_params(settings))
        log.info("config reloaded: detector params applied")

    async def run(self, stop: asyncio.Event) -> IngestStats:
        """Consume until ``stop`` is set, then store and commit the batch in hand and
        leave the group."""
        kafka = self.settings.kafka
        consumer, producer = self._consumer, self._producer
        consumer.subscribe(topics=list(kafka.topics), listener=_CommitBeforeRevoke(self))
        alerting = self._alerting
        if alerting is not None:
            alerting.start()
        try:
            await _start(consumer, kafka.bootstrap_servers)
            if producer is not None:
                await _start(producer, kafka.bootstrap_servers)
            log.info(
                "consuming %s as group %s from %s",
                ", ".join(f"{t} ({f})" for t, f in kafka.topics.items()),
                kafka.group_id,
                ",".join(kafka.bootstrap_servers),
            )
            while not stop.is_set():
                await self.apply_reload()
                await self._refresh_suppressions()
                revocations = self._revocations
                batch = await self._poll(stop)
                if batch:
                    await self._handle(batch, revocations)
                elif self._batches.holds_events or self._committer.pending:
                    # Idle: no newer event will move the watermark, so release what the
                    # detectors hold and store what they found.
                    async with self._lock:
                        await asyncio.to_thread(self._batches.release_held_events)
                        await self._settle()
            async with self._lock:
                # Detection ends with the stream: release held events and store the
                # final version of every open episode with the last batch.
                await asyncio.to_thread(self._batches.finish_detection)
                await self._checkpoint(final=True)
                if alerting is not None:
                    # Open alerts stay open, stored as they are now: the next start
                    # carries on with them instead of alerting again.
                    await asyncio.to_thread(alerting.checkpoint)
                await self._settle()
        finally:
            if alerting is not None:
                # Delivers what is due (the rest waits in the outbox for the next
                # start) and stores the delivery trail.
                await asyncio.to_thread(alerting.stop)
                await asyncio.to_thread(self._batches.writer.flush)
            await _stop(consumer, "consumer")
            if producer is not None:
                await _stop(producer, "dead-letter producer")
        stats = self.stats
        log.info(
            "stopped after %d records: %d events, %d dead letters in %d batches",
            stats.records,
            stats.events,
            stats.dead_letters,
            stats.batches,
        )
        return stats

    async def _refresh_suppressions(self) -> None:
        """Re-read the suppression rules (``gatewatch alerts suppress``) once a minute."""
        alerting = self._alerting
        if alerting is None or time.monotonic() < self._suppressions_due:
            return
        self._suppressions_due = time.monotonic() + _SUPPRESSIONS_EVERY_S
        async with self._lock:
            try:
                rules = await asyncio.to_thread(load_suppressions, self._store)
            except StoreError as exc:
                log.warning("suppression rules not reloaded: %s", exc)
                return
        alerting.suppressions.replace(rules)

    async def partitions_revoked(self, revoked: set[Any]) -> None:
        # Counted before waiting, so a batch fetched while this waits is dropped.
        self._revocations += 1
        async with self._lock:
            await self._settle()
            self._committer.forget(revoked)
        for tp in revoked:
            _remove_lag(self.metrics, tp)
        if revoked:
            log.info("partitions revoked: %s", _describe(revoked))

    async def partitions_assigned(self, assigned: set[Any]) -> None:
        log.info("partitions assigned: %s", _describe(assigned) if assigned else "none")
        sources = {source_name(tp.topic, tp.partition) for tp in assigned}
        new = sources - self._owned
        self._owned = sources
        checkpoints, engine = self._checkpoints, self._batches.engine
        if not new or checkpoints is None or engine is None:
            return
        # Baselines learnt before a restart, or by the partitions' previous owner.
        async with self._lock:
            try:
                restored = await asyncio.to_thread(checkpoints.restore, engine.detectors, new)
            except StoreError as exc:
                log.warning("learnt baselines not restored (they start empty): %s", exc)
                return
        if restored:
            self.metrics.checkpoints.labels("restored").inc()

    async def _checkpoint(self, *, final: bool = False) -> None:
        """Save the learnt baselines when due (and at shutdown): right after a commit,
        so the positions they include are those just committed."""
        checkpoints, engine = self._checkpoints, self._batches.engine
        if checkpoints is None or engine is None:
            return
        if not final and time.monotonic() < self._checkpoint_due:
            return
        self._checkpoint_due = time.monotonic() + self._checkpoint_every_s
        try:
            saved = await asyncio.to_thread(checkpoints.save, engine.detectors)
            if saved is not None:
                await asyncio.to_thread(checkpoints.prune)
        except StoreError as exc:
            log.warning("checkpoint of learnt baselines failed, retrying later: %s", exc)
            return
        if saved is not None:
            self.metrics.checkpoints.labels("saved").inc()
            self.metrics.checkpoint_bytes.set(saved.size)

    async def _poll(self, stop: asyncio.Event) -> Batch:
        """The next batch, or nothing when ``stop`` is set first or the poll times out."""
        fetch = asyncio.ensure_future(
            self._consumer.getmany(
                timeout_ms=POLL_TIMEOUT_MS, max_records=self.settings.kafka.max_batch_records
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait(
            {fetch, stopping}, timeout=POLL_DEADLINE_S, return_when=asyncio.FIRST_COMPLETED
        )
        stopping.cancel()
        if not fetch.done():
            fetch.cancel()
            await asyncio.wait({fetch})
            return {}
        try:
            batch: Batch = fetch.result()
        except KafkaError as exc:
            if not exc.retriable:
                raise KafkaIngestError(
                    f"consuming {list(self.settings.kafka.topics)}: {exc}"
                ) from exc
            log.warning("fetch failed, retrying in %.0f s: %s", ERROR_BACKOFF_S, exc)
            await _wait(stop, ERROR_BACKOFF_S)
            return {}
        return batch

    async def _handle(self, batch: Batch, revocations: int) -> None:
        async with self._lock:
            if revocations != self._revocations:
                dropped = sum(len(messages) for messages in batch.values())
                self.stats.dropped += dropped
                log.info("dropped %d records fetched before a rebalance", dropped)
                return
            started = time.perf_counter()
            self._consumer.pause(*self._consumer.assignment())
            try:
                result = await asyncio.to_thread(self._batches.store, batch)
                if result.dead and self._dead_letter_topic is not None:
                    await self._dead_letter_topic.publish(result.dead)
                self._committer.stored(result.next_offsets)
                await self._committer.commit()
                await self._checkpoint()
            finally:
                self._consumer.resume(*self._consumer.paused())
        self._account(result, time.perf_counter() - started)

    async def _settle(self) -> None:
        """Store anything buffered and commit it (before a revoke, and at the end)."""
        if self._batches.pending:
            await asyncio.to_thread(self._batches.flush)
        await self._committer.commit()

    def _account(self, result: BatchResult, seconds: float) -> None:
        stats = self.stats
        stats.batches += 1
        stats.records += result.records
        stats.events += result.events
        stats.dead_letters += len(result.dead)
        self.metrics.batch_seconds.observe(seconds)
        assigned = self._consumer.assignment()
        for tp, next_offset in result.next_offsets.items():
            if tp in assigned:
                highwater = self._consumer.highwater(tp)
                if highwater is not None:
                    lag = max(highwater - next_offset, 0)
                    self.metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)
        log.debug(
            "batch of %d records (%d events, %d dead letters) stored and committed in %.3f s",
            result.records,
            result.events,
            len(result.dead),
            seconds,
        )


def _pipelines(settings: Settings, masker: SecretMasker) -> dict[str, Pipeline]:
    pipelines = {}
    for topic, fmt in settings.kafka.topics.items():
        try:
            pipelines[topic] = build_pipeline(settings, fmt, masker=masker)
        except UnknownFormatError as exc:
            raise ConfigError("settings", [(f"kafka.topics.{topic}", str(exc))]) from None
    return pipelines


async def _start(client: Any, servers: Sequence[str]) -> None:
    try:
        await asyncio.wait_for(client.start(), START_TIMEOUT_S)
    except (KafkaError, TimeoutError) as exc:
        await _stop(client, type(client).__name__)
        # aiokafka reports a refused login or TLS handshake only as a failed bootstrap;
        # its own log line above says which.
        raise KafkaIngestError(
            f"cannot connect to Kafka at {','.join(servers)}: {exc!r} (check the address, "
            "kafka.security_protocol and the SASL/TLS settings; the reason, such as a "
            "failed authentication, is logged above)",
            retriable=True,
        ) from exc


async def _stop(client: Any, what: str) -> None:
    try:
        await asyncio.wait_for(client.stop(), STOP_TIMEOUT_S)
    except (KafkaError, TimeoutError) as exc:
        log.warning("stopping the %s did not finish cleanly: %r", what, exc)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` unless ``event`` is set first."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return


def _remove_lag(metrics: Metrics, tp: Any) -> None:
    try:
        metrics.lag.remove(tp.topic, str(tp.partition))
    except KeyError:
        return  # never measured on this consumer


def _describe(partitions: Mapping[Any, int] | set[Any]) -> str:
    """``topic/partition`` (``@offset`` for offsets), sorted, for logs."""
    if isinstance(partitions, Mapping):
        items = sorted((tp.topic, tp.partition, offset) for tp, offset in partitions.items())
        return ", ".join(f"{t}/{p}@{o}" for t, p, o in items)
    return ", ".join(f"{t}/{p}" for t, p in sorted((tp.topic, tp.partition) for tp in partitions))


def _reload_on_sighup(requested: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, requested.set)
    except (NotImplementedError, RuntimeError, ValueError):
        return  # not the main thread, or a platform without SIGHUP


def _remove_sighup() -> None:
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)


def _stop_on_signals(stop: asyncio.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set ``stop``; returns a function that removes the handlers.

    The first signal removes them too, so a second one stops the process at once (safe:
    offsets are only committed for stored records).
    """
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def request_stop(sig: signal.Signals) -> None:
        log.info("%s received: finishing the current batch, then leaving the group", sig.name)
        stop.set()
        restore()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, request_stop, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or a platform without them
        installed.append(sig)

    def restore() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)
        installed.clear()

    return restore


async def run_kafka(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    metrics: Metrics | None = None,
    reload: Callable[[], Settings] | None = None,
) -> IngestStats:
    """Consume ``settings.kafka.topics`` into the store until ``stop`` is set.

    Without ``stop``, SIGTERM and SIGINT stop it (the handlers are removed on return)
    and, given ``reload``, SIGHUP re-reads the settings and applies new detector params
    between batches, keeping what the detectors have learned.
    """
    if not settings.kafka.topics:
        raise ConfigError("settings", [("kafka.topics", "no topics to consume")])
    stop_event = stop if stop is not None else asyncio.Event()
    restore = _stop_on_signals(stop_event) if stop is None else None
    reload_requested = asyncio.Event()
    if stop is None and reload is not None:
        _reload_on_sighup(reload_requested)
    store = await asyncio.to_thread(open_store, settings)
    try:
        ingest = KafkaIngest(
            settings,
            store=store,
            metrics=metrics or Metrics(),
            consumer=build_consumer(settings.kafka),
            dead_letter_producer=(
                build_producer(settings.kafka) if settings.kafka.dead_letter_topic else None
            ),
        )
        if reload is not None:
            ingest.reload_with(reload, reload_requested)
        tune_for_streaming()
        return await ingest.run(stop_event)
    finally:
        if restore is not None:
            restore()
        if stop is None and reload is not None:
            _remove_sighup()
        store.close()
