from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from gatewatch.errors import SourceError
from ingest.sources.base import Record
from ingest.sources.lines import LineSplitter, read_error, replay_lines

CASES = [
    b"",
    b"\n",
    b"\n\n\n",
    b"one",
    b"one\n",
    b"one\ntwo",
    b"one\n\ntwo\n\n",
    b"crlf\r\nlines\r\n",
    b"crlf\r\nno newline at the end\r",
    b"\r\n\r\n",
    b"\r",
    b"two cr\r\r\n",
    b"mixed\r\nends\nhere",
    b"bare\rcr inside\n",
    b"12345678\n1234\n12345\n1234\r\n12345\r\n\n123456789",
    b"\xff\xfe\x00bad utf-8 \xc3\x28 and NUL\x00\n\x00\x00\n\xe2\x82",
]


def expected(data: bytes, limit: int, first: int = 1) -> list[tuple[int, bytes, int]]:
    """The obvious reading, with the whole input in memory."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    stripped = [line.removesuffix(b"\r") for line in lines]
    return [(n, line[:limit], len(line)) for n, line in enumerate(stripped, 1) if n >= first]


def chunkings(data: bytes) -> Iterator[list[bytes]]:
    """Every way to cut ``data`` in two, and one byte at a time."""
    yield [data]
    for cut in range(1, len(data)):
        yield [data[:cut], data[cut:]]
    yield [data[i : i + 1] for i in range(len(data))]


def split(chunks: list[bytes], limit: int, start_line: int = 1) -> list[tuple[int, bytes, int]]:
    records = replay_lines(chunks, source="t", max_line_bytes=limit, start_line=start_line)
    return [(r.position, r.data, r.size) for r in records]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("limit", [1, 4, 5, 1024])
def test_lines_are_the_same_however_the_input_is_chunked(data: bytes, limit: int) -> None:
    want = expected(data, limit)
    for chunks in chunkings(data):
        assert split(chunks, limit) == want, chunks


def test_lines_in_equal_records_out() -> None:
    data = b"a\n\nb\n\n\nc"
    records = list(replay_lines([data], source="t", max_line_bytes=100))
    assert [r.data for r in records] == [b"a", b"", b"b", b"", b"", b"c"]
    assert [r.position for r in records] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("start_line", [1, 2, 3, 5, 100])
def test_start_line_skips_earlier_lines_and_keeps_numbering(data: bytes, start_line: int) -> None:
    want = expected(data, 4, start_line)
    for chunks in chunkings(data):
        assert split(chunks, 4, start_line) == want, chunks


def test_start_line_counts_from_one() -> None:
    with pytest.raises(ValueError, match="start_line"):
        replay_lines([b"a\n"], source="t", max_line_bytes=10, start_line=0)


def test_max_line_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        LineSplitter("t", max_line_bytes=0)


def test_records_are_ordinary_immutable_records() -> None:
    splitter = LineSplitter("src", max_line_bytes=3)
    records = [*splitter.feed(b"first\nsecond\nx\n"), *splitter.feed(b"\n")]
    assert records == [
        Record("src", 1, b"fir", 5),
        Record("src", 2, b"sec", 6),
        Record("src", 3, b"x", 1),
        Record("src", 4, b"", 0),
    ]
    assert all(type(r) is Record for r in records)
    with pytest.raises(AttributeError):
        records[2].data = b"changed"  # type: ignore[misc]
    assert hash(records[2]) == hash(Record("src", 3, b"x", 1))


def test_state_moves_on_before_the_records_are_consumed() -> None:
    splitter = LineSplitter("t", max_line_bytes=10)
    first = splitter.feed(b"a\nb\npar")
    waiting = [splitter.partial]
    second = splitter.feed(b"tial\nc\n")
    waiting.append(splitter.partial)
    assert waiting == [True, False]
    assert [r.data for r in [*first, *second]] == [b"a", b"b", b"partial", b"c"]
    assert splitter.next_position == 5
    assert splitter.flush() is None


def test_positions_continue_across_flushes() -> None:
    splitter = LineSplitter("t", max_line_bytes=10, first_position=7)
    assert list(splitter.feed(b"end of a file")) == []
    assert splitter.flush() == Record("t", 7, b"end of a f", 13)
    assert [r.position for r in splitter.feed(b"next file\n")] == [8]


def test_an_endless_line_is_never_held_whole() -> None:
    chunk = b"x" * (1 << 20)
    line_chunks = 32

    def chunks() -> Iterator[bytes]:
        for _ in range(line_chunks):
            yield chunk
        yield b"\r\nnext line\n"

    tracemalloc.start()
    try:
        records = list(replay_lines(chunks(), source="t", max_line_bytes=1 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(r.data, r.size) for r in records] == [
        (chunk, line_chunks << 20),
        (b"next line", 9),
    ]
    assert peak < 5 << 20, f"peak {peak} bytes for a line of {line_chunks} MiB"


def test_read_error_names_the_source_and_the_reason() -> None:
    error = read_error("/var/log/x.log", FileNotFoundError(2, "No such file or directory"))
    assert isinstance(error, SourceError)
    assert str(error) == "/var/log/x.log: No such file or directory"
    assert str(read_error("stdin", EOFError("truncated"))) == "stdin: truncated"
