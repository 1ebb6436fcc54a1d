"""The source contract: an iterator of ``Record`` (raw bytes plus their origin)."""

from __future__ import annotations

from typing import NamedTuple


class Record(NamedTuple):
    """One raw log line as read, before any parsing.

    ``source`` names where it came from (a file path, ``stdin``, ``topic/partition``);
    ``position`` is its place there (line number from 1 for files and stdin, the offset
    for Kafka). Together they identify the line, so a replay can be recognised.
    ``data`` excludes the line terminator. ``size`` is the original length in bytes,
    which exceeds ``len(data)`` when an over-long line was cut to the reader's limit.

    A NamedTuple: immutable, and one is built per line, where a frozen dataclass's
    per-field ``object.__setattr__`` would cost more than reading the line.
    """

    source: str
    position: int
    data: bytes
    size: int
