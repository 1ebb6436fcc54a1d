"""Broker-free checks of the commit and retry rules (the broker tests are in
tests/integration)."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import pytest
from aiokafka.errors import CommitFailedError, KafkaConnectionError, TopicAuthorizationFailedError

from gatewatch.errors import StoreError
from gatewatch.kafka_ingest import STORE_ATTEMPTS, BatchStore, KafkaIngestError, OffsetCommitter
from gatewatch.metrics import Metrics


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    def __init__(self, assigned: set[TP], fail: list[BaseException]) -> None:
        self.assigned = assigned
        self.fail = fail
        self.commits: list[dict[Any, int]] = []

    def assignment(self) -> set[TP]:
        return self.assigned

    async def commit(self, offsets: dict[Any, int]) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.commits.append(dict(offsets))


A, B = TP("logs", 0), TP("logs", 1)


def test_commits_the_highest_stored_offset_per_partition() -> None:
    consumer = FakeConsumer({A, B}, [])
    committer = OffsetCommitter(consumer)
    committer.stored({A: 10, B: 5})
    committer.stored({A: 7})  # an older offset never moves a partition back
    assert asyncio.run(committer.commit()) is True
    assert consumer.commits == [{A: 10, B: 5}]
    assert committer.pending == {}


def test_a_retriable_failure_keeps_offsets_for_the_next_attempt() -> None:
    consumer = FakeConsumer({A}, [KafkaConnectionError()])
    committer = OffsetCommitter(consumer)
    committer.stored({A: 3})
    assert asyncio.run(committer.commit()) is False
    assert committer.pending == {A: 3}
    assert asyncio.run(committer.commit()) is True
    assert consumer.commits == [{A: 3}]


def test_a_rebalance_drops_what_is_no_longer_ours() -> None:
    consumer = FakeConsumer({A}, [CommitFailedError("rebalanced")])
    committer = OffsetCommitter(consumer)
    committer.stored({A: 3, B: 9})
    assert asyncio.run(committer.commit()) is False  # B was revoked; A's commit failed
    assert committer.pending == {}
    assert consumer.commits == []


def test_a_fatal_commit_error_stops_the_consumer() -> None:
    consumer = FakeConsumer({A}, [TopicAuthorizationFailedError()])
    committer = OffsetCommitter(consumer)
    committer.stored({A: 1})
    assert not TopicAuthorizationFailedError.retriable
    with pytest.raises(KafkaIngestError, match="commit"):
        asyncio.run(committer.commit())


class FlakyWriter:
    def __init__(self, failures: int, *, retriable: bool) -> None:
        self.failures = failures
        self.retriable = retriable
        self.flushes = 0
        self.pending = 0

    def flush(self) -> None:
        self.flushes += 1
        if self.failures:
            self.failures -= 1
            raise StoreError("ClickHouse went away", retriable=self.retriable)


def batch_store(writer: FlakyWriter, sleeps: list[float]) -> BatchStore:
    return BatchStore({}, writer, masker=None, metrics=Metrics(), sleep=sleeps.append)  # type: ignore[arg-type]


def test_store_failures_are_retried_with_backoff() -> None:
    sleeps: list[float] = []
    writer = FlakyWriter(2, retriable=True)
    batch_store(writer, sleeps).flush()
    assert writer.flushes == 3
    assert sleeps == [1.0, 2.0]


def test_store_gives_up_after_bounded_attempts_and_on_fatal_errors() -> None:
    sleeps: list[float] = []
    stubborn = FlakyWriter(100, retriable=True)
    with pytest.raises(StoreError):
        batch_store(stubborn, sleeps).flush()
    assert stubborn.flushes == STORE_ATTEMPTS
    fatal = FlakyWriter(1, retriable=False)
    with pytest.raises(StoreError):
        batch_store(fatal, []).flush()
    assert fatal.flushes == 1
