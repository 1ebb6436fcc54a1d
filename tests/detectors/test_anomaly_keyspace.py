import pickle

import numpy as np
import numpy.typing as npt

from detectors.anomaly.keyspace import NOBODY, KeySpace


def names(*values: str) -> npt.NDArray[np.object_]:
    return np.asarray(values, dtype=object)


def test_a_client_keeps_its_id_and_equal_strings_share_one() -> None:
    space = KeySpace()
    first = space.ids(names("198.51.100.7", "", "u:ana"))
    assert first.tolist() == [1, NOBODY, 2] and len(space) == 2
    again = space.ids(names("".join(["u:", "ana"]), "203.0.113.5"))  # a fresh object
    assert again.tolist() == [2, 3]
    assert space.names(again).tolist() == ["u:ana", "203.0.113.5"]
    assert space.id("198.51.100.7") == 1 and space.id("192.0.2.1") == -1
    assert space.capacity == 4


def test_idle_clients_are_forgotten_and_their_ids_handed_out_again() -> None:
    space = KeySpace()
    old, recent = space.ids(names("old", "recent")).tolist()
    space.seen(np.asarray([old]), 100.0)
    space.seen(np.asarray([recent]), 500.0)
    gone = space.forget(before=200.0, limit=10, keep=np.zeros(0, dtype=np.int64))
    assert gone.tolist() == [old] and space.id("old") == -1 and len(space) == 1
    (reused,) = space.ids(names("newcomer")).tolist()
    assert reused == old and space.names(np.asarray([reused])).tolist() == ["newcomer"]
    assert space.capacity == 3  # no id was added


def test_past_the_limit_the_least_recently_seen_go_but_not_those_held() -> None:
    space = KeySpace()
    clients = space.ids(names(*(f"c{i}" for i in range(10))))
    space.seen(clients, 0.0)
    for i, client in enumerate(clients.tolist()):
        space.seen(np.asarray([client]), float(i))  # c9 the most recent
    held = np.asarray([space.id("c0")])  # in an open window
    gone = space.forget(before=-1.0, limit=4, keep=held)
    kept = {f"c{i}" for i in range(10) if space.id(f"c{i}") >= 0}
    assert kept == {"c0", "c8", "c9"}  # the most recent half of the limit, and the held one
    assert len(gone) == 7 and NOBODY not in gone.tolist()
    assert space.names(gone).tolist() == [None] * 7  # free ids


def test_adopting_names_every_client_of_the_other_space() -> None:
    mine, theirs = KeySpace(), KeySpace()
    mine.ids(names("a"))
    theirs.ids(names("x", "a"))
    theirs.seen(theirs.ids(names("x", "a")), 50.0)
    ours, their_ids = mine.adopt(theirs)
    assert mine.names(ours).tolist() == theirs.names(their_ids).tolist() == ["x", "a"]
    assert mine.id("a") == 1 and mine.last_seen[ours].tolist() == [50.0, 50.0]


def test_a_pickled_space_carries_on() -> None:
    space = KeySpace()
    given = space.ids(names("198.51.100.7", "u:ana", "k:fp:1"))
    restored = pickle.loads(pickle.dumps(space))
    assert restored.ids(names("".join(["u:", "ana"]), "203.0.113.9")).tolist() == [2, 4]
    assert restored.names(given).tolist() == ["198.51.100.7", "u:ana", "k:fp:1"]
