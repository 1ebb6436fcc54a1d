"""Detection live from Kafka: findings reach ClickHouse, and SIGHUP retunes detectors
without a restart. Runs ``gatewatch run`` against the real broker, with its own topic."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.conftest import (
    Consumer,
    _create_topics,
    findings_metric,
    metric_total,
    query_store,
    send_values,
    wait_until,
)
from tests.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOPIC = "gw-it-detect"


class DetectingConsumer(Consumer):
    """A consumer whose config also tunes the insecure-transport detector."""

    plain_http = True

    def _toml(self, kafka: dict[str, Any], *, metrics: bool) -> str:
        return super()._toml(kafka, metrics=metrics) + (
            "\n[detection]\nallowed_lateness_s = 2.0\n"
            "[detection.detectors.insecure_transport]\n"
            f"plain_http = {str(self.plain_http).lower()}\n"
        )


def _line(client_ip: str, i: int, *, scheme: str = "http", tls: str = "") -> bytes:
    return orjson.dumps(
        {
            "request_id": f"{client_ip}-{i}",
            "ts": round((time.time() - 60 + i) * 1000),
            "client_ip": client_ip,
            "method": "POST",
            "scheme": scheme,
            "path": "/api/v1/auth/login",
            "status": 200,
            "user": "alice",
            "tls_version": tls,
        }
    )


def test_findings_are_stored_and_sighup_retunes_detectors(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap
    asyncio.run(_create_topics(bootstrap, [TOPIC]))
    consumer = DetectingConsumer(
        tmp_path / "detect", bootstrap=bootstrap, group="gw-it-detect", topics={TOPIC: "canonical"}
    )
    consumer.start(metrics=True)
    try:
        asyncio.run(send_values(bootstrap, TOPIC, [_line("192.0.2.10", i) for i in range(3)]))
        wait_until(lambda: findings_metric(consumer) >= 1, timeout=60, what="the first finding")
        # All three must be read under the old config: a send the broker made the
        # producer retry can arrive after the finding, and then after the retune.
        wait_until(
            lambda: metric_total(consumer, "gatewatch_records_consumed_total") >= 3,
            timeout=60,
            what="the three plain-HTTP logins",
        )
        # Retune: plain HTTP is no longer flagged; weak TLS still is.
        consumer.plain_http = False
        consumer.config.write_text(consumer._toml({}, metrics=True), encoding="utf-8")
        assert consumer.proc is not None
        os.kill(consumer.proc.pid, signal.SIGHUP)
        wait_until(lambda: "config reloaded" in consumer.log(), timeout=30, what="the reload")
        later = [_line("192.0.2.20", i) for i in range(3)]
        later.append(_line("192.0.2.30", 9, scheme="https", tls="TLSv1.0"))
        asyncio.run(send_values(bootstrap, TOPIC, later))
        wait_until(lambda: findings_metric(consumer) >= 2, timeout=60, what="the TLS finding")
        assert consumer.terminate() == 0, consumer.log()
    finally:
        if consumer.running:
            consumer.kill()
    rows = query_store(
        consumer.data_dir,
        {
            "found": "SELECT entity, subkind, length(evidence) FROM {db}.findings FINAL "
            "ORDER BY entity"
        },
    )["found"]
    assert rows == [["192.0.2.10", "cleartext_credentials", 3], ["192.0.2.30", "weak_tls", 1]]
    events = query_store(consumer.data_dir, {"n": "SELECT count() FROM {db}.events FINAL"})
    assert events["n"] == 7
