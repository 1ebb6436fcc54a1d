import random

import pytest

from detectors.state import DistinctCounter, EntityTable, WindowCounter
from tests.threads import reads_during


def test_entity_table_evicts_least_recently_active_past_the_cap() -> None:
    table: EntityTable[int, list[int]] = EntityTable(list, ttl_s=60, max_entities=100)
    for i in range(10_000):
        table.get(i, float(i))
    assert len(table) == 100 and table.evicted == 9_900
    assert table.peek(9_999) == [] and table.peek(0) is None


def test_entity_table_expires_in_event_time() -> None:
    table: EntityTable[str, int] = EntityTable(int, ttl_s=10, max_entities=10)
    table.put("a", 0.0, 1)
    table.put("b", 5.0, 2)
    table.get("a", 8.0)  # activity renews "a"
    assert table.expire(16.0) == 1 and list(table.keys()) == ["a"]


def test_window_counter_slides_and_ignores_what_fell_out() -> None:
    counter = WindowCounter(window_s=60, buckets=12)
    for t in range(0, 120):
        counter.add(float(t))
    assert 60 <= counter.total(119.0) <= 65
    counter.add(10.0)  # older than the window: ignored
    assert counter.total(119.0) <= 65
    assert counter.total(1_000.0) == 0


@pytest.mark.parametrize("n", [10, 1_000, 50_000])
def test_distinct_counter_is_exact_when_small_and_close_when_large(n: int) -> None:
    counter = DistinctCounter(exact_limit=64)
    rng = random.Random(n)
    values = [str(rng.getrandbits(64)) for _ in range(n)]
    for value in values + values[: n // 2]:
        counter.add(value)
    if n <= 64:
        assert counter.count() == n
    else:
        assert abs(counter.count() - n) / n < 0.1


def test_entity_table_states_can_be_read_while_another_thread_grows_it() -> None:
    """/metrics reads tables from its own thread while detection adds to them."""
    table: EntityTable[int, list[int]] = EntityTable(list, ttl_s=60, max_entities=50_000)

    def grow() -> None:
        for i in range(200_000):
            table.get(i, float(i) / 1000).append(i)

    def read() -> None:
        assert all(len(state) == 1 for state in table.states())

    assert reads_during(grow, read) > 0
    assert [state[0] for state in table.states()] == list(range(150_000, 200_000))
