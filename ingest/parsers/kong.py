"""Placeholder until the kong parser lands (being written now)."""

from __future__ import annotations

from typing import ClassVar

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent


class KongParser:
    name: ClassVar[str] = "kong"

    def parse(self, line: bytes) -> RawEvent:
        raise ParseError("kong parser not implemented yet")
