"""Placeholder until the envoy parser lands (being written now)."""

from __future__ import annotations

from typing import ClassVar

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent


class EnvoyParser:
    name: ClassVar[str] = "envoy"

    def parse(self, line: bytes) -> RawEvent:
        raise ParseError("envoy parser not implemented yet")
