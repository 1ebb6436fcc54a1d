"""Placeholder until the nginx parser lands (being written now)."""

from __future__ import annotations

from typing import ClassVar

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent


class NginxParser:
    name: ClassVar[str] = "nginx"

    def parse(self, line: bytes) -> RawEvent:
        raise ParseError("nginx parser not implemented yet")
