"""Writing rendered requests as log lines, optionally paced in wall-clock time.

This is the only place the simulator looks at the wall clock: generation runs in
simulated time, and pacing only decides when finished lines leave.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import BinaryIO

from ingest.simulator.request import SimRequest

logger = logging.getLogger(__name__)


class _TokenBucket:
    """Allows ``rate`` lines per second, with at most 10 ms worth of lines in a burst.

    ``take`` reserves one token and returns how long to sleep before using it; a
    reservation may drive the level negative, and the sleep pays it back.
    """

    __slots__ = ("_last", "_level", "capacity", "rate")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate / 100.0)
        self._level = 1.0
        self._last = time.monotonic()

    def take(self) -> float:
        now = time.monotonic()
        self._level = min(self.capacity, self._level + (now - self._last) * self.rate)
        self._last = now
        self._level -= 1.0
        return 0.0 if self._level >= 0.0 else -self._level / self.rate


def write_lines(
    requests: Iterable[SimRequest],
    renderer: Callable[[SimRequest], bytes],
    out: BinaryIO,
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    flush_every: int = 1024,
) -> int:
    """Render each request as one newline-terminated line on ``out``; the line count.

    With ``rate``, lines leave at about ``rate`` per second of wall time (and are
    flushed before each pause, so a reader following the file sees them as they are
    due); without it, as fast as possible. ``out`` is flushed at least every
    ``flush_every`` lines, and ``progress`` is called with the running count after
    each flush. When the reader goes away (``BrokenPipeError``, as when piped into
    ``head``) writing stops quietly and the count of lines already handed to ``out``
    is returned; ``out``'s descriptor is pointed at ``/dev/null`` so that flushing it
    again at exit cannot fail.
    """
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if flush_every <= 0:
        raise ValueError(f"flush_every must be positive, got {flush_every}")
    written = 0
    batch: list[bytes] = []

    def flush() -> None:
        nonlocal written
        if batch:
            batch.append(b"")
            out.write(b"\n".join(batch))
            written += len(batch) - 1
            batch.clear()
        out.flush()
        if progress is not None:
            progress(written)

    try:
        if rate is None:
            for request in requests:
                batch.append(renderer(request))
                if len(batch) >= flush_every:
                    flush()
        else:
            bucket = _TokenBucket(rate)
            for request in requests:
                line = renderer(request)
                pause = bucket.take()
                if pause > 0.0:
                    if batch:
                        flush()
                    time.sleep(pause)
                batch.append(line)
                if len(batch) >= flush_every:
                    flush()
        flush()
    except BrokenPipeError:
        logger.debug("reader closed the output after %d lines", written)
        _discard(out)
    return written


def _discard(out: BinaryIO) -> None:
    """Point ``out``'s descriptor at ``/dev/null``: its reader is gone, and a later
    flush (at interpreter exit, for standard output) must not raise again."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
