"""The test broker from kafka/broker.sh: produce, consume, restart, and the data is still there."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.kafka_broker import KafkaBroker, kafka_available

TOPIC = "gw-broker-selftest"
GROUP = "gw-broker-selftest-group"
CLIENT_TIMEOUT_S = 30.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    available, reason = kafka_available()
    if not available:
        pytest.skip(f"no Kafka test broker here: {reason}")
    kafka = KafkaBroker(tmp_path / "kafka")
    try:
        kafka.start()
        yield kafka
    finally:
        kafka.stop()


async def _produce(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15_000)
    await asyncio.wait_for(producer.start(), CLIENT_TIMEOUT_S)
    try:
        for key, value in messages:
            await asyncio.wait_for(producer.send_and_wait(TOPIC, value, key=key), CLIENT_TIMEOUT_S)
    finally:
        await producer.stop()


async def _consume(
    bootstrap: str, expected: int, *, group: str | None = GROUP, commit: bool = False
) -> set[tuple[bytes, bytes]]:
    """Read the topic until ``expected`` records arrived (or the time is up), from the group's
    committed offsets, or from the start without a group."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=15_000,
    )
    await asyncio.wait_for(consumer.start(), CLIENT_TIMEOUT_S)
    seen: set[tuple[bytes, bytes]] = set()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLIENT_TIMEOUT_S
        while len(seen) < expected and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                seen.update((record.key, record.value) for record in records)
        if commit:
            await asyncio.wait_for(consumer.commit(), CLIENT_TIMEOUT_S)
    finally:
        await consumer.stop()
    return seen


async def _committed_total(bootstrap: str, expected: int) -> int:
    """Sum of GROUP's committed offsets on the topic, as the broker reports them.

    A restarted broker loads ``__consumer_offsets`` in the background and answers with no
    offsets (or a coordinator error) until it is done, so ask again until the sum reaches
    ``expected`` or the time is up, and return the last answer.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await asyncio.wait_for(admin.start(), CLIENT_TIMEOUT_S)
    total = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLIENT_TIMEOUT_S
        while True:
            try:
                offsets = await asyncio.wait_for(
                    admin.list_consumer_group_offsets(GROUP), CLIENT_TIMEOUT_S
                )
            except KafkaError:
                offsets = {}
            total = sum(meta.offset for tp, meta in offsets.items() if tp.topic == TOPIC)
            if total >= expected or loop.time() >= deadline:
                return total
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


@pytest.mark.timeout(240)
def test_broker_keeps_messages_across_restart(broker: KafkaBroker) -> None:
    bootstrap = broker.bootstrap
    host, _, port = bootstrap.rpartition(":")
    assert host == "127.0.0.1"
    assert int(port) > 0

    before = [(f"k{i}".encode(), f"event-{i}".encode()) for i in range(20)]
    asyncio.run(_produce(bootstrap, before))
    assert asyncio.run(_consume(bootstrap, len(before), commit=True)) == set(before)

    assert broker.restart() == bootstrap  # same port, same data

    # The records were kept ...
    assert asyncio.run(_consume(bootstrap, len(before), group=None)) == set(before)
    # ... and so were the group's committed offsets.
    assert asyncio.run(_committed_total(bootstrap, len(before))) == len(before)
    after = [(b"after", b"event-after-restart")]
    asyncio.run(_produce(bootstrap, after))
    # The group resumes after its committed offsets: only the new record is left to read.
    assert asyncio.run(_consume(bootstrap, 1)) == set(after)


def test_stop_is_idempotent(tmp_path: Path) -> None:
    # Stopping a broker that never started (or was already stopped) is not an error.
    broker = KafkaBroker(tmp_path / "never-started")
    broker.stop()
    broker.stop()
    assert broker.pid is None
