from __future__ import annotations

import errno
import io
import os
import queue
import threading

import pytest

from gatewatch.errors import SourceError
from ingest.sources.base import Record
from ingest.sources.stream import read_stream


def test_every_line_of_the_stream_becomes_a_record() -> None:
    stream = io.BytesIO(b"one\r\n\n\xff\x00 garbage\nlast")
    records = list(read_stream(stream, max_line_bytes=100))
    assert records == [
        Record("stdin", 1, b"one", 3),
        Record("stdin", 2, b"", 0),
        Record("stdin", 3, b"\xff\x00 garbage", 10),
        Record("stdin", 4, b"last", 4),
    ]


def test_source_names_the_stream() -> None:
    records = read_stream(io.BytesIO(b"x\n"), source="pipe:gateway", max_line_bytes=10)
    assert [r.source for r in records] == ["pipe:gateway"]


def test_an_empty_stream_has_no_lines() -> None:
    assert list(read_stream(io.BytesIO(b""), max_line_bytes=10)) == []


def test_an_over_long_line_is_cut_to_the_limit() -> None:
    stream = io.BytesIO(b"x" * 3000 + b"\nok\n")
    records = list(read_stream(stream, max_line_bytes=1000))
    assert [(r.data, r.size) for r in records] == [(b"x" * 1000, 3000), (b"ok", 2)]


def test_lines_from_a_pipe_arrive_before_the_writer_is_done() -> None:
    read_end, write_end = os.pipe()
    received: queue.Queue[Record] = queue.Queue()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb", buffering=0) as writer:

        def consume() -> None:
            for record in read_stream(reader, source="pipe", max_line_bytes=100):
                received.put(record)

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        writer.write(b"first\nsec")
        assert received.get(timeout=5).data == b"first"
        writer.write(b"ond\nthird, unterminated")
        assert received.get(timeout=5).data == b"second"
        writer.close()
        assert received.get(timeout=5) == Record("pipe", 3, b"third, unterminated", 19)
        thread.join(5)
        assert not thread.is_alive()


class _Failing(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        raise OSError(errno.EIO, "Input/output error")


def test_a_read_failure_is_a_source_error() -> None:
    stream = io.BufferedReader(_Failing())
    with pytest.raises(SourceError) as caught:
        list(read_stream(stream, max_line_bytes=10))
    assert str(caught.value) == "stdin: Input/output error"
