"""Lines from stdin or a pipe: ``producer | gatewatch ingest -i -``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from ingest.sources.base import Record
from ingest.sources.lines import CHUNK_BYTES, read_error, replay_lines


def read_stream(
    stream: BinaryIO, *, source: str = "stdin", max_line_bytes: int
) -> Iterator[Record]:
    """Every line of a binary stream until its end, an unterminated last line included.

    Reads with ``read1`` when the stream has it (``sys.stdin.buffer`` does): a plain
    ``read`` of a buffered pipe waits for a whole chunk, which would hold back the
    lines of a slow producer for minutes. Nothing is read until iteration starts; the
    stream is left open, as it belongs to the caller.
    """
    return replay_lines(_chunks(stream, source), source=source, max_line_bytes=max_line_bytes)


def _chunks(stream: BinaryIO, source: str) -> Iterator[bytes]:
    read = getattr(stream, "read1", stream.read)
    while True:
        try:
            chunk: bytes = read(CHUNK_BYTES)
        except OSError as exc:
            raise read_error(source, exc) from exc
        if not chunk:
            return
        yield chunk
