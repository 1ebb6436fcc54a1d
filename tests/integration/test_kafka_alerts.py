"""Alerts live from Kafka: ``gatewatch run`` against the real broker turns a brute force
into one alert delivered to a JSON webhook on 127.0.0.1, and stores the alert and its
delivery trail in ClickHouse."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.alerts.receivers import HttpReceiver
from tests.integration.conftest import (
    Consumer,
    _create_topics,
    findings_metric,
    query_store,
    send_values,
    wait_until,
)
from tests.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOPIC = "gw-it-alerts"
ATTACKER = "203.0.113.66"


class AlertingConsumer(Consumer):
    """A consumer whose alerts go to one JSON webhook."""

    hook = ""

    def _toml(self, kafka: dict[str, Any], *, metrics: bool) -> str:
        return super()._toml(kafka, metrics=metrics) + (
            "\n[detection]\nallowed_lateness_s = 1.0\n"
            "[alerts]\ncooldown_s = 3600\n"
            f'[alerts.channels.hook]\nurl = "{self.hook}"\n'
            '[[alerts.routes]]\nchannels = ["hook"]\n'
        )


def _failed_login(i: int) -> bytes:
    return orjson.dumps(
        {
            "request_id": f"bf-{i}",
            "ts": round((time.time() - 120 + i) * 1000),
            "client_ip": ATTACKER,
            "method": "POST",
            "scheme": "https",
            "tls_version": "TLSv1.3",
            "path": "/api/v1/auth/login",
            "status": 401,
            "user": "alice",
        }
    )


def test_a_brute_force_from_kafka_is_one_alert_delivered_audited_and_kept_across_a_restart(
    kafka: KafkaBroker, tmp_path: Path
) -> None:
    bootstrap = kafka.bootstrap
    asyncio.run(_create_topics(bootstrap, [TOPIC]))
    with HttpReceiver() as receiver:
        consumer = AlertingConsumer(
            tmp_path / "alerts",
            bootstrap=bootstrap,
            group="gw-it-alerts",
            topics={TOPIC: "canonical"},
        )
        consumer.hook = receiver.url("/alerts", scheme="json")
        try:
            consumer.start(metrics=False)
            asyncio.run(send_values(bootstrap, TOPIC, [_failed_login(i) for i in range(40)]))
            wait_until(lambda: receiver.wait_for(1, 0.5), timeout=60, what="the alert")
            # More of the same attack updates the alert silently (cooldown): no repeat.
            asyncio.run(send_values(bootstrap, TOPIC, [_failed_login(40 + i) for i in range(20)]))
            time.sleep(3)
            assert consumer.terminate() == 0, consumer.log()
            first = _stored(consumer.data_dir)
            # A restart (a deploy): the attack goes on; the open alert carries on too.
            consumer.start(metrics=True)
            asyncio.run(send_values(bootstrap, TOPIC, [_failed_login(60 + i) for i in range(40)]))
            wait_until(lambda: findings_metric(consumer) >= 1, timeout=60, what="a finding")
            time.sleep(2)
            assert consumer.terminate() == 0, consumer.log()
        finally:
            if consumer.running:
                consumer.kill()
        messages = [request.json() for request in receiver.succeeded()]
    assert len(messages) == 1, messages
    assert "brute_force" in messages[0]["title"] and ATTACKER in messages[0]["title"]
    assert "gatewatch query actor --ip 203.0.113.66" in messages[0]["message"]
    assert first["deliveries"] == [["hook", 1, 1]]
    [(alert_id, version, *alert)] = first["alerts"]
    assert alert == ["ip", ATTACKER, "open"]  # stays open across the restart
    [(same_id, later_version, *_)] = _stored(consumer.data_dir)["alerts"]
    assert same_id == alert_id and later_version > version


def _stored(data_dir: Path) -> dict[str, Any]:
    return query_store(
        data_dir,
        {
            "alerts": "SELECT id, version, actor_type, actor, state FROM {db}.alerts FINAL",
            "deliveries": "SELECT channel, attempt, ok FROM {db}.alert_deliveries",
        },
    )
