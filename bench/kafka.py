"""Kafka -> ClickHouse: events per consumer CPU-second, and end-to-end lag.

Starts the test broker (kafka/broker.sh), produces BENCH_KAFKA_EVENTS simulated canonical
lines over 6 partitions, then runs one `gatewatch run` process until it has stored
them all, and reads its CPU time from the OS. Lag: the time from the last message
being produced to the last row being stored, with the producer and consumer running
at the same time.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from bench.common import figure
from ingest.simulator.kafka_output import produce_lines
from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from tests.kafka_broker import KafkaBroker

EVENTS = int(os.environ.get("BENCH_KAFKA_EVENTS", "200000"))
TOPIC = "bench-logs"
LAG_BURST = 20_000


async def _create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=6, replication_factor=1)])
    finally:
        await admin.close()


def _produce(bootstrap: str, count: int, seed: int) -> float:
    config = SimulationConfig(seed=seed, start_ts=time.time() - 3600, count=count, duration_s=None)
    asyncio.run(
        produce_lines(
            generate(config),
            RENDERERS["canonical"],
            connection={"bootstrap_servers": bootstrap},
            topic=TOPIC,
        )
    )
    return time.monotonic()


def _stored(data_dir: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "gatewatch", "db", "stats"],
        env={**os.environ, "GATEWATCH_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    counts = dict(line.split()[:2] for line in done.stdout.splitlines() if line.strip())
    return int(counts["events"].replace(",", "")) + int(counts["dead_letters"].replace(",", ""))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        broker = KafkaBroker(Path(tmp) / "broker")
        bootstrap = broker.start()
        try:
            asyncio.run(_create_topic(bootstrap))
            _produce(bootstrap, EVENTS, seed=21)
            data_dir = Path(tmp) / "consumer"
            env = {
                **os.environ,
                "GATEWATCH_DATA_DIR": str(data_dir),
                "GATEWATCH_METRICS__ENABLED": "false",
            }
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            consumer = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gatewatch",
                    "run",
                    "--kafka",
                    bootstrap,
                    "--topic",
                    f"{TOPIC}:canonical",
                    "--group",
                    "bench",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # Poll the consumer's own progress through its log-free channel: stop it when
            # the group has caught up (its committed offsets reach the end), then count.
            _wait_caught_up(bootstrap, "bench", EVENTS, timeout=900)
            wall = time.monotonic() - started
            # Lag: a burst produced while the consumer is live, until all is committed
            # (committed means stored: offsets are committed only after the insert).
            last_sent = _produce(bootstrap, LAG_BURST, seed=22)
            _wait_caught_up(bootstrap, "bench", EVENTS + LAG_BURST, timeout=300)
            lag = time.monotonic() - last_sent
            consumer.send_signal(signal.SIGTERM)
            consumer.wait(timeout=60)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            stored = _stored(data_dir)
            figure(
                "Kafka -> chDB, one consumer",
                stored / cpu,
                "events/cpu-s",
                f"{stored:,} stored; backlog of {EVENTS:,} at {EVENTS / wall:,.0f}/wall-s",
            )
            figure(
                "end-to-end lag after a live burst",
                lag,
                "s",
                f"{LAG_BURST:,} messages; last produced -> all stored and committed",
            )
        finally:
            broker.stop()


def _wait_caught_up(bootstrap: str, group: str, total: int, timeout: float) -> None:
    async def committed() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        except KafkaError:  # the group does not exist until the consumer joins
            return 0
        finally:
            await admin.close()
        return sum(meta.offset for meta in offsets.values() if meta.offset > 0)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(committed()) >= total:
            return
        time.sleep(0.5)
    raise TimeoutError(f"consumer did not catch up with {total} records in {timeout} s")


if __name__ == "__main__":
    main()
