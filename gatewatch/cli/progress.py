"""A one-line progress display for long replays on a terminal."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressLine:
    """Rewrites one stderr line: percent done, lines, lines/s, time left."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self._shown = False

    def update(self, done_bytes: int, total_bytes: int, lines: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = lines / elapsed
        text = f"{lines:,} lines  {rate:,.0f} lines/s"
        if total_bytes > 0:
            fraction = min(done_bytes / total_bytes, 1.0)
            left = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
            text = f"{fraction:6.1%}  {text}  ~{left:,.0f} s left"
        self.stream.write("\r" + text.ljust(70))
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()
