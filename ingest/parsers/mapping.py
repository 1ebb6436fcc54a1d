"""Placeholder until the mapping parser lands (being written now)."""

from __future__ import annotations

from typing import ClassVar

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent


class MappingParser:
    name: ClassVar[str] = "mapping"

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields

    def parse(self, line: bytes) -> RawEvent:
        raise ParseError("mapping parser not implemented yet")
