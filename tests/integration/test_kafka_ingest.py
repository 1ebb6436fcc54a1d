"""Kafka -> ClickHouse against a real broker: every record stored exactly once, through
crashes, rebalances, broker restarts and graceful stops.

Each test runs consumer processes in their own consumer group over the session's
50,000 records (1% garbage) and counts what their stores hold with ``FINAL``.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer

from tests.integration.conftest import (
    CLIENT_TIMEOUT_S,
    Consumer,
    Dataset,
    committed,
    store_counts,
    stored_keys,
    wait_until,
)
from tests.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

Consumers = Callable[[str, str], Consumer]
CATCH_UP_TIMEOUT_S = 150.0


def _caught_up(dataset: Dataset, group: str) -> Callable[[], bool]:
    return lambda: committed(dataset.bootstrap, group) >= dataset.total


def _assert_exactly_once(dataset: Dataset, counts: dict[str, int]) -> None:
    assert counts["events"] + counts["dead_letters"] == dataset.total, counts
    assert counts["dead_letters"] == dataset.garbage, counts
    assert counts["duplicate_keys"] == 0, counts
    assert counts["secrets"] == 0, counts


async def _read_topic(bootstrap: str, topic: str, expected: int) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await asyncio.wait_for(consumer.start(), CLIENT_TIMEOUT_S)
    values: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while len(values) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            values += [json.loads(m.value) for ms in batches.values() for m in ms]
    finally:
        await consumer.stop()
    return values


def _scrape(url: str) -> dict[str, float]:
    """Prometheus samples, ``name{labels}`` -> value."""
    with urllib.request.urlopen(url, timeout=10) as page:
        text = page.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _sum(samples: dict[str, float], name: str) -> float:
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def test_every_record_stored_once(dataset: Dataset, consumers: Consumers) -> None:
    consumer = consumers("single", "gw-it-single").start(
        metrics=True, dead_letter_topic="gw-it-dead"
    )
    took = wait_until(
        _caught_up(dataset, "gw-it-single"), timeout=CATCH_UP_TIMEOUT_S, what="the consumer"
    )
    url = consumer.metrics_url()
    assert url is not None, consumer.log()
    wait_until(
        lambda: _sum(_scrape(url), "gatewatch_records_consumed_total") == dataset.total,
        timeout=10,
        what="the consumed counter",
    )
    samples = _scrape(url)
    assert _sum(samples, "gatewatch_events_stored_total") == dataset.total - dataset.garbage
    assert _sum(samples, "gatewatch_dead_letters_total") == dataset.garbage
    assert _sum(samples, "gatewatch_kafka_lag") == 0
    assert len([k for k in samples if k.startswith("gatewatch_kafka_lag{")]) == 12
    assert samples["gatewatch_batch_seconds_count"] > 0
    assert consumer.terminate() == 0, consumer.log()
    records, cpu = consumer.consumed()
    assert records == dataset.total

    _assert_exactly_once(dataset, store_counts(consumer.data_dir))
    dead = asyncio.run(_read_topic(dataset.bootstrap, "gw-it-dead", dataset.garbage))
    assert len(dead) == dataset.garbage
    assert {"topic", "partition", "offset", "key", "reason", "raw"} <= set(dead[0])
    assert not any("s3cr3t" in json.dumps(letter) for letter in dead)
    if cpu:
        print(
            f"one consumer: {records} records in {took:.1f} s wall, {cpu:.1f} CPU s "
            f"({records / cpu:,.0f} records per CPU-second, start-up included)"
        )


def test_kill_and_restart_stores_nothing_twice(dataset: Dataset, consumers: Consumers) -> None:
    consumer = consumers("killed", "gw-it-kill").start()
    wait_until(
        lambda: committed(dataset.bootstrap, "gw-it-kill") >= dataset.total // 5,
        timeout=CATCH_UP_TIMEOUT_S,
        what="a fifth of the records to be committed",
    )
    consumer.kill()
    at_kill = committed(dataset.bootstrap, "gw-it-kill")
    assert at_kill < dataset.total, "the consumer finished before it could be killed"

    consumer.start()
    wait_until(_caught_up(dataset, "gw-it-kill"), timeout=CATCH_UP_TIMEOUT_S, what="catch-up")
    assert consumer.terminate() == 0, consumer.log()
    _assert_exactly_once(dataset, store_counts(consumer.data_dir))

    # A full replay (a new group reads everything again into the same store) collapses.
    consumer.start(group_id="gw-it-kill-replay")
    wait_until(_caught_up(dataset, "gw-it-kill-replay"), timeout=CATCH_UP_TIMEOUT_S, what="replay")
    assert consumer.terminate() == 0, consumer.log()
    assert consumer.consumed()[0] == dataset.total
    _assert_exactly_once(dataset, store_counts(consumer.data_dir))


def test_two_consumers_share_the_partitions(dataset: Dataset, consumers: Consumers) -> None:
    first = consumers("first", "gw-it-pair").start()
    second = consumers("second", "gw-it-pair").start()
    wait_until(_caught_up(dataset, "gw-it-pair"), timeout=CATCH_UP_TIMEOUT_S, what="the pair")
    assert first.terminate() == 0, first.log()
    assert second.terminate() == 0, second.log()

    keys = [stored_keys(first.data_dir), stored_keys(second.data_dir)]
    assert all(keys), [len(k) for k in keys]  # both had partitions
    assert not keys[0] & keys[1]
    assert len(keys[0]) + len(keys[1]) == dataset.total
    assert first.consumed()[0] + second.consumed()[0] == dataset.total


def test_consumer_survives_a_broker_restart(
    kafka: KafkaBroker, dataset: Dataset, consumers: Consumers
) -> None:
    consumer = consumers("restart", "gw-it-restart").start(max_batch_records=500)
    wait_until(
        lambda: committed(dataset.bootstrap, "gw-it-restart") > 0,
        timeout=CATCH_UP_TIMEOUT_S,
        what="a first commit",
    )
    assert committed(dataset.bootstrap, "gw-it-restart") < dataset.total
    assert kafka.restart() == dataset.bootstrap
    assert consumer.running, consumer.log()
    wait_until(_caught_up(dataset, "gw-it-restart"), timeout=CATCH_UP_TIMEOUT_S, what="recovery")
    assert consumer.terminate() == 0, consumer.log()
    _assert_exactly_once(dataset, store_counts(consumer.data_dir))


def test_sigterm_commits_and_a_restart_reads_nothing_twice(
    dataset: Dataset, consumers: Consumers
) -> None:
    group = "gw-it-term"
    consumer = consumers("term", group).start()
    wait_until(
        lambda: committed(dataset.bootstrap, group) >= dataset.total // 5,
        timeout=CATCH_UP_TIMEOUT_S,
        what="a fifth of the records to be committed",
    )
    assert consumer.terminate() == 0, consumer.log()
    first_run, _ = consumer.consumed()
    # The final commit covers exactly what the run consumed.
    assert committed(dataset.bootstrap, group) == first_run
    assert first_run < dataset.total

    consumer.start()
    wait_until(_caught_up(dataset, group), timeout=CATCH_UP_TIMEOUT_S, what="the second run")
    assert consumer.terminate() == 0, consumer.log()
    second_run, _ = consumer.consumed()
    assert first_run + second_run == dataset.total

    consumer.start()
    wait_until(
        lambda: "partitions assigned: gw-it" in consumer.log(), timeout=60, what="an assignment"
    )
    time.sleep(2)  # polls once or twice: there is nothing left to read
    assert consumer.terminate() == 0, consumer.log()
    assert consumer.consumed()[0] == 0
    _assert_exactly_once(dataset, store_counts(consumer.data_dir))
