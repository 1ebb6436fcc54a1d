"""Placeholder until the auto parser lands (being written now)."""

from __future__ import annotations

from typing import ClassVar

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent


class AutoParser:
    name: ClassVar[str] = "auto"

    def parse(self, line: bytes) -> RawEvent:
        raise ParseError("auto parser not implemented yet")
