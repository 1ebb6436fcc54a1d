"""Lines from a log file: replayed once (``read_file``) or followed as it grows
(``follow_file``, like ``tail -F``).

Both number lines from 1 so that ``(source, position)`` identifies a line and a replay
of the same file can be recognised downstream. A replay reads ``.gz`` files
transparently; a follower reads plain files only, since a compressed file is never
appended to.
"""

from __future__ import annotations

import enum
import gzip
import io
import logging
import os
import threading
import zlib
from collections.abc import Callable, Generator, Iterator
from time import monotonic

from gatewatch.errors import SourceError
from ingest.sources.base import Record
from ingest.sources.lines import CHUNK_BYTES, LineSplitter, read_error, replay_lines

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.5
"""Seconds between two progress reports: often enough for a live display, rare enough
to cost nothing."""

Progress = Callable[[int, int], None]
"""Called with (bytes read so far, total bytes or 0 when unknown)."""


def read_file(
    path: str | os.PathLike[str],
    *,
    max_line_bytes: int,
    start_line: int = 1,
    on_progress: Progress | None = None,
) -> Iterator[Record]:
    """Every line of a file, once, an unterminated last line included.

    ``source`` is the path as given. A name ending in ``.gz`` is decompressed on the
    fly. Lines before ``start_line`` are counted but not yielded, to resume a replay
    where it stopped. ``on_progress`` receives the bytes read so far and the file's
    size (0 for a compressed file, whose size says nothing of its content) at most
    every ``PROGRESS_INTERVAL`` seconds, and once more at the end.

    The file is opened when iteration starts; a file that cannot be opened or read
    raises ``SourceError`` with the path and the reason.
    """
    source = os.fspath(path)
    return replay_lines(
        _file_chunks(source, on_progress),
        source=source,
        max_line_bytes=max_line_bytes,
        start_line=start_line,
    )


def _is_gzip(path: str) -> bool:
    return path.lower().endswith(".gz")


def _file_chunks(path: str, on_progress: Progress | None) -> Iterator[bytes]:
    handle: gzip.GzipFile | io.FileIO
    try:
        if _is_gzip(path):
            handle = gzip.GzipFile(path, "rb")
            total = 0
        else:
            handle = io.FileIO(path, "rb")
            total = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise read_error(path, exc) from exc
    with handle:
        done = 0
        next_report = monotonic() + PROGRESS_INTERVAL
        while True:
            try:
                chunk = handle.read(CHUNK_BYTES)
            except (OSError, EOFError, zlib.error) as exc:
                raise read_error(path, exc) from exc
            if not chunk:
                break
            done += len(chunk)
            if on_progress is not None:
                now = monotonic()
                if now >= next_report:
                    on_progress(done, total)
                    next_report = now + PROGRESS_INTERVAL
            yield chunk
        if on_progress is not None:
            on_progress(done, total)


def follow_file(
    path: str | os.PathLike[str],
    *,
    max_line_bytes: int,
    stop: threading.Event,
    poll_interval: float = 0.25,
    from_start: bool = True,
) -> Iterator[Record]:
    """The lines of a file as they are appended, until ``stop`` is set; like ``tail -F``.

    A line is yielded once its newline is written; when ``stop`` is set an unfinished
    line is dropped and iteration ends within ``poll_interval``. With ``from_start``
    false the lines already complete are skipped, but still counted (which reads the
    file once), so positions stay line numbers and agree with a replay of the file.

    The path is followed, not the open file:

    - *rotation by rename or deletion* (the path now names another file): the old file
      is read to its end, then for as long as its writer keeps appending to it (until
      a poll finds nothing new); an unterminated line left in it is yielded as a line,
      since nothing can complete it any more; then the new file is read from its start;
    - *copytruncate* (the file became shorter than what was read): an unterminated line
      is yielded as it is, and reading starts again at the file's beginning. Data the
      writer appended between the copy and the truncation is lost, as with any reader
      of copytruncate logs, and so is a truncation that is refilled past the previous
      size between two polls;
    - *missing path*: the old file, if any, is still read, and the path is retried
      every ``poll_interval`` until a file appears, which is read from its start.

    Positions come from one counter for the whole follow: after a rotation they go on
    from the old file's last line instead of restarting at 1, so ``(source, position)``
    stays unique for the followed path. They are line numbers within the first file
    only.

    Nothing is opened until iteration starts. A file that exists but cannot be opened
    then raises ``SourceError``; later on the same problem is logged and retried, as
    rotation can briefly leave a file with the wrong owner.
    """
    source = os.fspath(path)
    if poll_interval <= 0:
        raise ValueError(f"poll_interval must be positive, got {poll_interval}")
    if _is_gzip(source):
        raise SourceError(f"{source}: a compressed file cannot be followed; replay it instead")
    splitter = LineSplitter(source, max_line_bytes=max_line_bytes)
    return _follow(source, splitter, stop, poll_interval, from_start)


class _Change(enum.Enum):
    """What became of the followed path since the file behind it was opened."""

    NONE = "none"
    MISSING = "missing"
    REPLACED = "replaced"
    TRUNCATED = "truncated"


class _OpenFile:
    """The file currently read for a followed path, and how far it was read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle = io.FileIO(path, "rb")
        status = os.fstat(self.handle.fileno())
        self.identity = (status.st_dev, status.st_ino)
        self.offset = 0

    def close(self) -> None:
        self.handle.close()

    def rewind(self) -> None:
        self.offset = self.handle.seek(0)

    def skip_complete_lines(self, stop: threading.Event) -> int:
        """Moves past every complete line and returns how many there were; an unfinished
        last line is left to be read, so that it is yielded whole once completed."""
        lines = 0
        start_of_line = 0
        while not stop.is_set():
            chunk = self._read()
            if not chunk:
                break
            newlines = chunk.count(b"\n")
            if newlines:
                lines += newlines
                start_of_line = self.offset - len(chunk) + chunk.rindex(b"\n") + 1
        self.offset = self.handle.seek(start_of_line)
        return lines

    def drain(self, splitter: LineSplitter, stop: threading.Event) -> Generator[Record, None, int]:
        """Yields what was appended since the last call, up to the current end of the
        file, and returns how many bytes that was."""
        read = 0
        while not stop.is_set():
            chunk = self._read()
            if not chunk:
                break
            read += len(chunk)
            yield from splitter.feed(chunk)
        return read

    def change(self) -> _Change:
        try:
            status = os.stat(self.path)
        except OSError:
            return _Change.MISSING
        if (status.st_dev, status.st_ino) != self.identity:
            return _Change.REPLACED
        if status.st_size < self.offset:
            return _Change.TRUNCATED
        return _Change.NONE

    def _read(self) -> bytes:
        try:
            chunk = self.handle.read(CHUNK_BYTES)
        except OSError as exc:
            raise read_error(self.path, exc) from exc
        self.offset += len(chunk)
        return chunk


def _follow(
    path: str,
    splitter: LineSplitter,
    stop: threading.Event,
    poll_interval: float,
    from_start: bool,
) -> Iterator[Record]:
    current: _OpenFile | None = None
    try:
        current = _open_first(path)
        if current is not None and not from_start:
            splitter.next_position += current.skip_complete_lines(stop)
        problem = ""
        while not stop.is_set():
            if current is None:
                try:
                    current = _OpenFile(path)
                except FileNotFoundError:
                    stop.wait(poll_interval)
                    continue
                except OSError as exc:
                    if str(exc) != problem:
                        problem = str(exc)
                        log.warning("cannot open %s, retrying: %s", path, exc.strerror or exc)
                    stop.wait(poll_interval)
                    continue
                problem = ""
                log.info("following %s from the start of a new file", path)
            yield from current.drain(splitter, stop)
            if stop.is_set():
                return
            change = current.change()
            if change is _Change.REPLACED:
                # The writer may not have reopened the path yet: take what it still
                # appends to the old file until a poll finds nothing new.
                while not stop.wait(poll_interval):
                    if not (yield from current.drain(splitter, stop)):
                        break
                if stop.is_set():
                    return
                yield from _flush(splitter)
                current.close()
                current = None
            elif change is _Change.TRUNCATED:
                log.info("%s was truncated; reading it again from the start", path)
                yield from _flush(splitter)
                current.rewind()
            else:
                stop.wait(poll_interval)
    finally:
        if current is not None:
            current.close()


def _open_first(path: str) -> _OpenFile | None:
    try:
        return _OpenFile(path)
    except FileNotFoundError:
        log.info("%s does not exist yet; waiting for it", path)
        return None
    except OSError as exc:
        raise read_error(path, exc) from exc


def _flush(splitter: LineSplitter) -> Iterator[Record]:
    last = splitter.flush()
    if last is not None:
        yield last
