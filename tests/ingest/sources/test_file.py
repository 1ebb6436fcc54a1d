from __future__ import annotations

import gzip
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewatch.errors import SourceError
from ingest.sources import file as file_source
from ingest.sources.base import Record
from ingest.sources.file import follow_file, read_file

MiB = 1 << 20
POLL = 0.02


def lines_of(records: list[Record]) -> list[tuple[int, bytes, int]]:
    return [(r.position, r.data, r.size) for r in records]


# --- replay ----------------------------------------------------------------------------


def test_replay_yields_every_line_once(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"first\n\nthird\n\n\nlast without newline")
    records = list(read_file(str(path), max_line_bytes=MiB))
    assert lines_of(records) == [
        (1, b"first", 5),
        (2, b"", 0),
        (3, b"third", 5),
        (4, b"", 0),
        (5, b"", 0),
        (6, b"last without newline", 20),
    ]
    assert {r.source for r in records} == {str(path)}


def test_source_is_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.log").write_bytes(b"x\n")
    monkeypatch.chdir(tmp_path)
    assert [r.source for r in read_file("a.log", max_line_bytes=10)] == ["a.log"]
    assert [r.source for r in read_file(Path("a.log"), max_line_bytes=10)] == ["a.log"]


def test_crlf_terminators_are_stripped(tmp_path: Path) -> None:
    path = tmp_path / "iis.log"
    path.write_bytes(b"one\r\ntwo\r\n\r\nthree\r")
    assert lines_of(list(read_file(path, max_line_bytes=MiB))) == [
        (1, b"one", 3),
        (2, b"two", 3),
        (3, b"", 0),
        (4, b"three", 5),
    ]


def test_a_huge_line_is_cut_and_the_next_one_is_intact(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    huge = bytes(range(11, 256)) * (5_000_000 // 245)
    path.write_bytes(b"before\n" + huge + b"\nafter\n")
    records = list(read_file(path, max_line_bytes=MiB))
    assert lines_of(records[::2]) == [(1, b"before", 6), (3, b"after", 5)]
    assert records[1].position == 2
    assert records[1].size == len(huge)
    assert records[1].data == huge[:MiB]


def test_bytes_pass_through_untouched(tmp_path: Path) -> None:
    garbage = [b"\xff\xfe invalid utf-8 \xc3\x28", b"\x00\x00NUL\x00", b"\x1b[31mansi\x1b[0m"]
    path = tmp_path / "garbage.log"
    path.write_bytes(b"\n".join(garbage) + b"\n")
    assert [r.data for r in read_file(path, max_line_bytes=MiB)] == garbage


def test_gzip_is_read_transparently(tmp_path: Path) -> None:
    content = b"".join(b"line %d\n" % n for n in range(1, 1001))
    plain = tmp_path / "access.log"
    plain.write_bytes(content)
    packed = tmp_path / "access.log.1.gz"
    packed.write_bytes(gzip.compress(content))
    unpacked = list(read_file(packed, max_line_bytes=MiB))
    assert lines_of(unpacked) == lines_of(list(read_file(plain, max_line_bytes=MiB)))
    assert unpacked[-1].data == b"line 1000"
    assert unpacked[0].source == str(packed)


def test_start_line_resumes_a_replay(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(b"1\n2\n3\n4\n5")
    records = list(read_file(path, max_line_bytes=10, start_line=4))
    assert lines_of(records) == [(4, b"4", 1), (5, b"5", 1)]


@pytest.mark.parametrize(
    ("name", "reason"),
    [("missing.log", "No such file or directory"), ("missing.log.gz", "No such file")],
)
def test_a_missing_file_is_a_source_error(tmp_path: Path, name: str, reason: str) -> None:
    path = tmp_path / name
    with pytest.raises(SourceError, match=reason) as caught:
        list(read_file(path, max_line_bytes=10))
    assert str(path) in str(caught.value)


def test_a_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="Is a directory"):
        list(read_file(tmp_path, max_line_bytes=10))


@pytest.mark.parametrize(
    "content", [b"not gzip at all\n", gzip.compress(b"cut short\n" * 1000)[:-20]]
)
def test_a_corrupt_gzip_is_a_source_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.log.gz"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=r"broken\.log\.gz: "):
        list(read_file(path, max_line_bytes=MiB))


def test_progress_reports_growing_byte_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_source, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(file_source, "PROGRESS_INTERVAL", 0.0)
    path = tmp_path / "access.log"
    path.write_bytes(b"x" * 99 + b"\n" * 100 * 50)
    size = path.stat().st_size
    calls: list[tuple[int, int]] = []
    records = list(read_file(path, max_line_bytes=MiB, on_progress=lambda *c: calls.append(c)))
    assert len(records) == 5000
    done = [d for d, _ in calls]
    assert len(calls) > 3
    assert done == sorted(done)
    assert done[0] > 0
    assert calls[-1] == (size, size)
    assert {total for _, total in calls} == {size}


def test_progress_is_throttled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_source, "CHUNK_BYTES", 100)
    path = tmp_path / "access.log"
    path.write_bytes(b"line\n" * 10_000)
    calls: list[tuple[int, int]] = []
    list(read_file(path, max_line_bytes=MiB, on_progress=lambda *c: calls.append(c)))
    assert calls == [(50_000, 50_000)]


def test_progress_of_a_gzip_has_no_total(tmp_path: Path) -> None:
    path = tmp_path / "access.log.gz"
    path.write_bytes(gzip.compress(b"line\n" * 100))
    calls: list[tuple[int, int]] = []
    list(read_file(path, max_line_bytes=MiB, on_progress=lambda *c: calls.append(c)))
    assert calls == [(500, 0)]


# --- follow ----------------------------------------------------------------------------


class Follower:
    """Runs follow_file in a thread, as the CLI does, and hands over what it yields."""

    def __init__(self, path: Path, *, from_start: bool = True) -> None:
        self.stop = threading.Event()
        self.records: queue.Queue[Record] = queue.Queue()
        self.errors: list[BaseException] = []
        self.iterator = follow_file(
            path, max_line_bytes=64, stop=self.stop, poll_interval=POLL, from_start=from_start
        )
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for record in self.iterator:
                self.records.put(record)
        except BaseException as exc:
            self.errors.append(exc)

    def take(self, count: int, timeout: float = 5.0) -> list[tuple[int, bytes]]:
        deadline = time.monotonic() + timeout
        taken = []
        for _ in range(count):
            record = self.records.get(timeout=max(deadline - time.monotonic(), 0.01))
            taken.append((record.position, record.data))
        return taken

    def nothing_more(self, wait: float = 10 * POLL) -> bool:
        time.sleep(wait)
        return self.records.empty()

    def finish(self, timeout: float = 1.0) -> float:
        """Sets stop; returns how long the follower took to return."""
        started = time.monotonic()
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "follow_file did not return after stop"
        assert not self.errors, self.errors
        return time.monotonic() - started


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "access.log"


@pytest.fixture
def follow(log_path: Path) -> Iterator[list[Follower]]:
    followers: list[Follower] = []
    yield followers
    for follower in followers:
        follower.stop.set()
        follower.thread.join(1.0)


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def test_follow_reads_existing_then_appended_lines(log_path: Path, follow: list[Follower]) -> None:
    log_path.write_bytes(b"old 1\n\nold 3\n")
    follow.append(follower := Follower(log_path))
    assert follower.take(3) == [(1, b"old 1"), (2, b""), (3, b"old 3")]
    append(log_path, b"new 4\nnew 5\n")
    assert follower.take(2) == [(4, b"new 4"), (5, b"new 5")]
    assert follower.nothing_more()
    assert follower.finish() < 0.5


def test_follow_holds_a_partial_line_until_its_newline(
    log_path: Path, follow: list[Follower]
) -> None:
    log_path.write_bytes(b"")
    follow.append(follower := Follower(log_path))
    append(log_path, b"half a li")
    assert follower.nothing_more()
    append(log_path, b"ne\r\nnext\n")
    assert follower.take(2) == [(1, b"half a line"), (2, b"next")]


def test_stop_drops_a_partial_line_and_returns_promptly(
    log_path: Path, follow: list[Follower]
) -> None:
    log_path.write_bytes(b"whole\npartial")
    follow.append(follower := Follower(log_path))
    assert follower.take(1) == [(1, b"whole")]
    assert follower.finish() < 0.5
    assert follower.records.empty()


def test_follow_from_the_end_numbers_lines_as_a_replay_would(
    log_path: Path, follow: list[Follower]
) -> None:
    log_path.write_bytes(b"old 1\nold 2\nold 3\nstarted before")
    follow.append(follower := Follower(log_path, from_start=False))
    assert follower.nothing_more()
    append(log_path, b" and finished after\nnew 5\n")
    assert follower.take(2) == [(4, b"started before and finished after"), (5, b"new 5")]
    assert lines_of(list(read_file(log_path, max_line_bytes=64)))[3:] == [
        (4, b"started before and finished after", 33),
        (5, b"new 5", 5),
    ]


def test_rotation_by_rename_loses_and_repeats_nothing(
    log_path: Path, follow: list[Follower]
) -> None:
    writer = log_path.open("ab", buffering=0)
    writer.write(b"1\n2\n")
    follow.append(follower := Follower(log_path))
    assert follower.take(2) == [(1, b"1"), (2, b"2")]
    os.rename(log_path, log_path.with_suffix(".log.1"))
    writer.write(b"3 written to the old file after the rename\n4 unterminated")
    assert follower.take(1) == [(3, b"3 written to the old file after the rename")]
    writer.close()
    log_path.write_bytes(b"5 in the new file\n6\n")
    assert follower.take(3) == [(4, b"4 unterminated"), (5, b"5 in the new file"), (6, b"6")]
    append(log_path, b"7\n")
    assert follower.take(1) == [(7, b"7")]
    assert follower.nothing_more()


def test_rotation_by_copytruncate_starts_again_at_the_beginning(
    log_path: Path, follow: list[Follower]
) -> None:
    log_path.write_bytes(b"a long first line\nanother long line\n")
    follow.append(follower := Follower(log_path))
    assert follower.take(2) == [(1, b"a long first line"), (2, b"another long line")]
    with log_path.open("r+b") as handle:
        handle.truncate(0)
    assert follower.nothing_more()
    append(log_path, b"3 short\n")
    assert follower.take(1) == [(3, b"3 short")]
    assert follower.nothing_more()


def test_a_deleted_file_is_picked_up_again_when_recreated(
    log_path: Path, follow: list[Follower]
) -> None:
    log_path.write_bytes(b"1\n")
    follow.append(follower := Follower(log_path))
    assert follower.take(1) == [(1, b"1")]
    log_path.unlink()
    assert follower.nothing_more()
    log_path.write_bytes(b"2\n3\n")
    assert follower.take(2) == [(2, b"2"), (3, b"3")]


def test_a_file_missing_at_start_is_waited_for(log_path: Path, follow: list[Follower]) -> None:
    follow.append(follower := Follower(log_path, from_start=False))
    assert follower.nothing_more()
    log_path.write_bytes(b"1\n")
    assert follower.take(1) == [(1, b"1")]


def test_stop_returns_promptly_while_the_file_is_missing(
    log_path: Path, follow: list[Follower]
) -> None:
    follow.append(follower := Follower(log_path))
    time.sleep(3 * POLL)
    assert follower.finish() < 0.5


def test_following_a_gzip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot be followed"):
        follow_file(tmp_path / "a.log.gz", max_line_bytes=10, stop=threading.Event())


def test_an_unopenable_file_is_a_source_error(tmp_path: Path) -> None:
    records = follow_file(tmp_path, max_line_bytes=10, stop=threading.Event())
    with pytest.raises(SourceError, match="Is a directory"):
        next(records)


def test_poll_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        follow_file(tmp_path / "a.log", max_line_bytes=10, stop=threading.Event(), poll_interval=0)
