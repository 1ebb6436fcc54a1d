"""Learnt baselines survive a restart: ``gatewatch run`` checkpoints the anomaly models
with the Kafka positions they include, and the next run restores them when its
partitions are assigned. Runs against the real broker and the session's dataset."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Consumer, Dataset, metric_total, query_store, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


class CheckpointingConsumer(Consumer):
    salt = "integration-salt"

    def _toml(self, kafka: dict[str, Any], *, metrics: bool) -> str:
        text = super()._toml(kafka, metrics=metrics).replace('"integration-salt"', f'"{self.salt}"')
        return text + "\n[detection]\ncheckpoint_every_s = 1.0\n"


def model_windows(consumer: Consumer) -> float:
    """Windows the anomaly models have learnt or judged, as the running consumer
    reports them (restored models count what they had before the restart)."""
    url = consumer.metrics_url()
    assert url is not None
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith("gatewatch_detector_work_total{") and (
            'detector="anomaly_model"' in line and 'counter="model_windows"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_restart_restores_the_learnt_baselines(tmp_path: Path, dataset: Dataset) -> None:
    consumer = CheckpointingConsumer(
        tmp_path / "ckpt", bootstrap=dataset.bootstrap, group="gw-it-ckpt", topics=dataset.topics
    )
    consumer.start(metrics=True)
    try:
        wait_until(lambda: consumer.metrics_url() is not None, timeout=60, what="/metrics")
        wait_until(
            lambda: metric_total(consumer, "gatewatch_records_consumed_total") >= dataset.total,
            timeout=150,
            what="every record",
        )
        wait_until(
            lambda: metric_total(consumer, "gatewatch_checkpoints_total") >= 1,
            timeout=30,
            what="a checkpoint",
        )
        learnt = model_windows(consumer)
        assert learnt > 0
        assert consumer.terminate() == 0, consumer.log()
        assert "checkpointed anomaly_model" in consumer.log()

        # Nothing new to read: the restored models are all the second run has.
        consumer.start(metrics=True)
        wait_until(lambda: consumer.metrics_url() is not None, timeout=60, what="/metrics")
        wait_until(
            lambda: "restored anomaly_model from a checkpoint" in consumer.log(),
            timeout=60,
            what="the restore",
        )
        assert model_windows(consumer) >= learnt
        assert consumer.terminate() == 0, consumer.log()

        # A checkpoint whose signature does not verify (here: another salt; what someone
        # who can write to the store but not read the salt produces) is never unpickled.
        consumer.salt = "another-salt"
        consumer.start(metrics=True)
        wait_until(lambda: "does not verify" in consumer.log(), timeout=60, what="the refusal")
        assert "restored anomaly_model" not in consumer.log()
        assert consumer.terminate() == 0, consumer.log()
    finally:
        if consumer.running:
            consumer.kill()
    stored = query_store(
        consumer.data_dir,
        {
            "checkpoints": "SELECT count() FROM {db}.detector_checkpoints",
            "sources": "SELECT length(sources) FROM {db}.detector_checkpoints "
            "ORDER BY ts DESC LIMIT 1",
        },
    )
    assert 1 <= stored["checkpoints"] <= 8  # older ones pruned
    assert stored["sources"] == 12  # both topics' six partitions
