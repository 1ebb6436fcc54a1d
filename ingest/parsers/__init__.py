"""Parsers, one module per log format, and the registry that names them.

``FORMATS`` is the explicit registry (grep finds every format here); ``build_parser``
turns a format name from the config or the CLI into a parser instance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewatch.errors import GatewatchError
from ingest.parsers.apache import ApacheCombinedParser
from ingest.parsers.auto import AutoParser
from ingest.parsers.aws_apigw import AwsApiGatewayParser
from ingest.parsers.base import Parser, RawEvent
from ingest.parsers.canonical import CanonicalParser
from ingest.parsers.envoy import EnvoyParser
from ingest.parsers.kong import KongParser
from ingest.parsers.mapping import MappingParser
from ingest.parsers.nginx import NginxParser
from ingest.parsers.traefik import TraefikParser

if TYPE_CHECKING:
    from gatewatch.settings import IngestSettings

FORMATS: dict[str, type[Parser]] = {
    "auto": AutoParser,
    "canonical": CanonicalParser,
    "kong": KongParser,
    "envoy": EnvoyParser,
    "nginx": NginxParser,
    "apache": ApacheCombinedParser,
    "traefik": TraefikParser,
    "aws-apigw": AwsApiGatewayParser,
}

MAPPING_PREFIX = "mapping:"


def build_parser(name: str, settings: IngestSettings) -> Parser:
    """The parser for a format name: a registered format or ``mapping:<name>``.

    Raises ``UnknownFormatError`` naming the known formats for anything else.
    """
    known = ", ".join([*FORMATS, *(MAPPING_PREFIX + m for m in settings.mappings)])
    if name.startswith(MAPPING_PREFIX):
        mapping = settings.mappings.get(name.removeprefix(MAPPING_PREFIX))
        if mapping is None:
            raise UnknownFormatError(
                f"unknown log format {name!r}: no such mapping; known: {known}"
            )
        return MappingParser(mapping.fields)
    parser_class = FORMATS.get(name)
    if parser_class is None:
        raise UnknownFormatError(f"unknown log format {name!r}; known: {known}")
    return parser_class()


class UnknownFormatError(GatewatchError):
    """A format name that is neither registered nor a configured mapping."""


__all__ = ["FORMATS", "MAPPING_PREFIX", "Parser", "RawEvent", "UnknownFormatError", "build_parser"]
