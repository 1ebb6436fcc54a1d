"""Placeholder until the traefik parser lands (being written now)."""

from __future__ import annotations

from typing import ClassVar

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent


class TraefikParser:
    name: ClassVar[str] = "traefik"

    def parse(self, line: bytes) -> RawEvent:
        raise ParseError("traefik parser not implemented yet")
