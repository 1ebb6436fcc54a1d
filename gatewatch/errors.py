"""The root of every error Gatewatch raises on purpose.

Each subclass says where it happened and whether trying again can help, so callers pick
a policy (dead-letter, retry, stop) from the type instead of parsing messages.
"""

from __future__ import annotations


class GatewatchError(Exception):
    """Root of Gatewatch's own errors."""

    retriable: bool = False


class ConfigError(GatewatchError):
    """The configuration is invalid; the message names the file, the key and the reason."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [
            f"{source}: {key}: {reason}" if key else f"{source}: {reason}"
            for key, reason in problems
        ]
        super().__init__("\n".join(lines))


class ParseError(GatewatchError):
    """A log line could not become an Event. The reason is short and safe to store."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class StoreError(GatewatchError):
    """The ClickHouse store failed; retriable when the server may come back."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        self.retriable = retriable
        super().__init__(message)


class SourceError(GatewatchError):
    """A source (file, stdin, Kafka) cannot be read."""
