"""Simulated traffic produced into a Kafka topic, keyed by client IP.

Keying by client IP sends one client's requests to one partition, so per-client
detection stays exact when several consumers share a group (see README, "Kafka").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer

from ingest.simulator.request import SimRequest


async def produce_lines(
    requests: Iterable[SimRequest],
    renderer: Callable[[SimRequest], bytes],
    *,
    connection: Mapping[str, Any],
    topic: str,
    rate: float | None = None,
) -> int:
    """Produce one message per request (value: the rendered line; key: the client IP);
    returns the count. ``connection``: aiokafka's options for where the brokers are and
    how to log in (``ingest.sources.kafka.connection_options``, or just
    ``bootstrap_servers``). With ``rate``, paces sends at about that many per second."""
    producer = AIOKafkaProducer(
        **connection,
        linger_ms=20,
        max_batch_size=1 << 20,
        acks="all",
        enable_idempotence=True,
    )
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        pending = []
        for request in requests:
            pending.append(
                await producer.send(topic, renderer(request), key=request.client_ip.encode())
            )
            sent += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0.01:
                    await asyncio.sleep(ahead)
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
