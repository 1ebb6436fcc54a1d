"""Detector checkpoints in the store: signed, restored whole after a restart, and per
partition when another consumer's partitions are taken over."""

import logging
import random
import time

import pytest

from detectors.anomaly.detector import AnomalyModel, AnomalyModelParams
from detectors.brute_force import BruteForce, BruteForceParams
from gatewatch.store.checkpoints import Checkpoints, checkpoint_key
from gatewatch.store.client import Store
from tests.detectors.test_anomaly_detector import crowd, in_order, run

KEY = checkpoint_key(b"test-salt")


@pytest.fixture(scope="module")
def learnt() -> AnomalyModel:
    """A detector that has learnt 20 minutes of two partitions."""
    events = in_order(crowd(random.Random(4), 1200))
    half = len(events) // 2
    two = [e._replace(source="kafka:t/0") for e in events[:half]] + [
        e._replace(source="kafka:t/1") for e in events[half:]
    ]
    detector = AnomalyModel(AnomalyModelParams())
    run(detector, sorted(two, key=lambda e: e.ts), finish=False)
    return detector


def test_a_restart_restores_everything(store: Store, learnt: AnomalyModel) -> None:
    saved = Checkpoints(store, KEY, "g1").save([learnt])
    assert saved is not None and set(saved.positions) == {"kafka:t/0", "kafka:t/1"}
    fresh = AnomalyModel(AnomalyModelParams())
    restored = Checkpoints(store, KEY, "g1").restore([fresh], {"kafka:t/0", "kafka:t/1"})
    assert restored == saved.positions
    assert fresh.counters()["model_windows"] == learnt.counters()["model_windows"] > 0
    assert fresh.tracked() == learnt.tracked()
    # Another group's consumers never see it.
    assert Checkpoints(store, KEY, "g2").restore([AnomalyModel(AnomalyModelParams())]) == {}


def test_a_taken_over_partition_brings_only_its_positions(
    store: Store, learnt: AnomalyModel
) -> None:
    Checkpoints(store, KEY, "g1").save([learnt])
    taker = AnomalyModel(AnomalyModelParams())
    restored = Checkpoints(store, KEY, "g1").restore([taker], {"kafka:t/1", "kafka:t/9"})
    assert set(restored) == {"kafka:t/1"}
    assert set(taker.positions) == {"kafka:t/1"}
    assert Checkpoints(store, KEY, "g1").restore([taker], {"kafka:t/7"}) == {}


def test_a_checkpoint_signed_with_another_key_is_refused(
    store: Store, learnt: AnomalyModel, caplog: pytest.LogCaptureFixture
) -> None:
    Checkpoints(store, checkpoint_key(b"another salt"), "g1").save([learnt])
    fresh = AnomalyModel(AnomalyModelParams())
    with caplog.at_level(logging.ERROR):
        assert Checkpoints(store, KEY, "g1").restore([fresh]) == {}
    assert "does not verify" in caplog.text
    assert fresh.tracked() == 0


def test_old_checkpoints_are_pruned(store: Store, learnt: AnomalyModel) -> None:
    checkpoints = Checkpoints(store, KEY, "g1")
    for i in range(5):
        checkpoints.save([learnt], now=time.time() - 10 + i)  # (older: TTL)
    checkpoints.prune(keep=2)
    (count,) = store.query(
        f"SELECT count() FROM {store.database}.detector_checkpoints "
        "WHERE group_id = 'g1' SETTINGS mutations_sync = 1"
    )[0]
    assert count == 2


def test_detectors_without_state_are_not_checkpointed(store: Store) -> None:
    assert Checkpoints(store, KEY, "g1").save([BruteForce(BruteForceParams())]) is None
