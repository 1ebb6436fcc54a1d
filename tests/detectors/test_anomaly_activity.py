import math

import numpy as np
import numpy.typing as npt

from detectors.anomaly.activity import Activity, Rarity


def volumes(requests: float, rows: int = 1) -> npt.NDArray[np.float64]:
    return np.log1p(np.array([[requests, 1_000.0, 20_000.0]] * rows, dtype=np.float64))


def test_a_quiet_client_bursting_is_far_above_its_own_level() -> None:
    activity = Activity(half_life=100, max_entities=10)
    for _ in range(20):
        activity.learn(["quiet", "busy"], np.vstack([volumes(2), volumes(150)]))
    seen, level, z = activity.deviations(activity.slots["quiet"], volumes(200)[0].tolist())
    assert seen == 20 and math.expm1(level[0]) == 2.0
    assert z[0] > 10  # 200 requests where it sends 2
    _, _, z_busy = activity.deviations(activity.slots["busy"], volumes(200)[0].tolist())
    assert z_busy[0] < 4  # 200 where it sends 150: its usual


def test_entities_are_bounded_and_forgotten_when_idle() -> None:
    activity = Activity(half_life=10, max_entities=4)
    for i in range(10):
        activity.learn([f"c{i}"], volumes(5))
    assert len(activity) <= 4
    assert "c9" in activity.slots  # the most recent survive
    activity.learn(["c9"], volumes(5))
    activity.expire(idle_windows=1)
    assert list(activity.slots) == ["c9"]
    assert activity.seen[activity.slots["c9"]] == 2


def test_adopting_another_consumers_entities_keeps_its_own() -> None:
    mine, theirs = Activity(half_life=10, max_entities=10), Activity(half_life=10, max_entities=10)
    mine.learn(["a"], volumes(5))
    theirs.learn(["a", "b"], volumes(50, rows=2))
    mine.adopt(theirs)
    assert math.expm1(mine.level[mine.slots["a"]][0]) == 5.0
    assert math.expm1(mine.level[mine.slots["b"]][0]) == 50.0


def test_rarity_says_how_few_windows_move_as_much() -> None:
    rarity = Rarity(half_life=1e9)
    rarity.add(np.vstack([volumes(3, rows=9_990), volumes(300, rows=10)]))
    assert rarity.tail(0, math.log1p(300)) <= 1e-3
    assert rarity.tail(0, math.log1p(3)) == 1.0
    assert Rarity(half_life=10).tail(0, 5.0) == 1.0  # nothing seen: nothing is rare
