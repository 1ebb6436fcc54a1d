"""Placeholder until the aws-apigw parser lands (being written now)."""

from __future__ import annotations

from typing import ClassVar

from gatewatch.errors import ParseError
from ingest.parsers.base import RawEvent


class AwsApiGatewayParser:
    name: ClassVar[str] = "aws-apigw"

    def parse(self, line: bytes) -> RawEvent:
        raise ParseError("aws-apigw parser not implemented yet")
