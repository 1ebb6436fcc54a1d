"""Bounded line splitting, shared by every line source (files, followed files, stdin).

Cutting bytes into lines happens here, once, so that all line sources agree on what
the pipeline relies on:

- every line of the input becomes exactly one Record, empty and garbled ones included,
  so that lines in and records out reconcile exactly (``wc -l`` plus an unterminated
  last line);
- bytes pass through untouched: decoding, and deciding what is garbage, is the
  parser's business;
- memory stays bounded by the chunk size and ``max_line_bytes`` whatever the input: of an
  over-long line only the first ``max_line_bytes`` bytes are kept, the rest is counted
  as it streams past, and ``size`` reports the real length, so the pipeline can
  dead-letter it with its true size without ever holding it.

A line ends at ``"\\n"``; one ``"\\r"`` right before it belongs to the terminator
(CRLF logs), and so does a ``"\\r"`` at the very end of the input.

>>> splitter = LineSplitter("demo", max_line_bytes=4)
>>> [(r.position, r.data, r.size) for r in splitter.feed(b"ok\\r\\n\\ntoo long\\npar")]
[(1, b'ok', 2), (2, b'', 0), (3, b'too ', 8)]
>>> splitter.flush()
Record(source='demo', position=4, data=b'par', size=3)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gatewatch.errors import SourceError
from ingest.sources.base import Record

CHUNK_BYTES = 1 << 20
"""What one read asks for: large enough that per-chunk costs vanish next to per-line
costs, small enough to keep memory bounded."""


class LineSplitter:
    """Cuts a byte stream, fed in chunks of any size, into line Records.

    Chunks need not align with lines: an unterminated tail is carried over to the next
    ``feed``; only its first ``max_line_bytes + 1`` bytes are kept (the extra byte lets
    a ``"\\r"`` terminator be told from content). Positions count from
    ``first_position`` for the splitter's whole life, which is what lets a follower
    number lines across file rotations with a single counter.
    """

    def __init__(self, source: str, *, max_line_bytes: int, first_position: int = 1) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be at least 1, got {max_line_bytes}")
        self.source = source
        self.max_line_bytes = max_line_bytes
        self.next_position = first_position
        self._head = b""
        self._seen = 0
        self._ends_with_cr = False

    def __repr__(self) -> str:
        return (
            f"LineSplitter({self.source!r}, max_line_bytes={self.max_line_bytes}, "
            f"next_position={self.next_position})"
        )

    @property
    def partial(self) -> bool:
        """Whether bytes of an unterminated line are waiting for their newline."""
        return self._seen > 0

    def feed(self, chunk: bytes) -> Iterator[Record]:
        """The lines that ``chunk`` completes, in order.

        The splitter's state moves on before this returns, so the records can be
        consumed at leisure; they must still be consumed before the next chunk's if
        their order matters.
        """
        lines = chunk.split(b"\n")
        rest = lines.pop()
        if not lines:
            self._carry(rest)
            return iter(())
        first = self._complete(lines[0])
        del lines[0]
        position = self.next_position
        self.next_position += len(lines)
        self._carry(rest)
        if b"\r" in chunk:
            # Only the lines in between: the first one and the unterminated rest went
            # through _carry, which copes with a "\r" and its "\n" in different chunks.
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        return _records(first, lines, self.source, position, self.max_line_bytes)

    def flush(self) -> Record | None:
        """The unterminated line as a complete one, for when its newline cannot come
        any more: the input ended, or the file it was in was rotated away."""
        if not self._seen:
            return None
        return self._complete(b"")

    def _carry(self, piece: bytes) -> None:
        if not piece:
            return
        room = self.max_line_bytes + 1 - len(self._head)
        if room > 0:
            self._head += piece[:room]
        self._seen += len(piece)
        self._ends_with_cr = piece.endswith(b"\r")

    def _complete(self, piece: bytes) -> Record:
        self._carry(piece)
        size = self._seen - 1 if self._ends_with_cr else self._seen
        record = Record(
            self.source, self.next_position, self._head[: min(size, self.max_line_bytes)], size
        )
        self.next_position += 1
        self._head = b""
        self._seen = 0
        self._ends_with_cr = False
        return record


def _records(
    first: Record, lines: list[bytes], source: str, position: int, limit: int
) -> Iterator[Record]:
    """The hot loop: a fraction of a microsecond a line, so everything is a local."""
    yield first
    for line in lines:
        size = len(line)
        record = Record(source, position, line if size <= limit else line[:limit], size)
        yield record
        position += 1


def replay_lines(
    chunks: Iterable[bytes], *, source: str, max_line_bytes: int, start_line: int = 1
) -> Iterator[Record]:
    """Every line of a finite input, an unterminated last one included.

    Lines before ``start_line`` are skipped without being split, only counted, so that
    resuming a long replay costs little more than reading up to where it stopped;
    positions stay the input's true line numbers.
    """
    if start_line < 1:
        raise ValueError(f"start_line counts from 1, got {start_line}")
    splitter = LineSplitter(source, max_line_bytes=max_line_bytes, first_position=start_line)
    return _replay(iter(chunks), splitter, start_line - 1)


def _replay(chunks: Iterator[bytes], splitter: LineSplitter, skip: int) -> Iterator[Record]:
    for chunk in chunks:
        if skip:
            newlines = chunk.count(b"\n")
            if newlines < skip:
                skip -= newlines
                continue
            end = -1
            for _ in range(skip):
                end = chunk.index(b"\n", end + 1)
            skip = 0
            yield from splitter.feed(chunk[end + 1 :])
        else:
            yield from splitter.feed(chunk)
    last = splitter.flush()
    if last is not None:
        yield last


def read_error(source: str, exc: BaseException) -> SourceError:
    """A SourceError naming the input and the operating system's reason."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return SourceError(f"{source}: {reason or type(exc).__name__}")
