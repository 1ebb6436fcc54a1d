import gc
from collections.abc import Iterator

import pytest

from gatewatch.gc_tuning import YOUNG_THRESHOLD, tune_for_streaming


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_freezes_start_up_objects_and_collects_young_objects_less_often() -> None:
    gc.unfreeze()
    tune_for_streaming()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    # Cycles made after start-up are still collected.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
