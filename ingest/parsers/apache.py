"""Placeholder until the apache parser lands (being written now)."""

from __future__ import annotations

from typing import ClassVar

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent


class ApacheCombinedParser:
    name: ClassVar[str] = "apache"

    def parse(self, line: bytes) -> RawEvent:
        raise ParseError("apache parser not implemented yet")
