"""Logging for the command line: readable text, or one JSON object per line."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


# Client libraries whose DEBUG output dumps protocol requests verbatim: aiokafka logs
# SaslAuthenticateRequest with the SASL/PLAIN password in its bytes. Never below INFO,
# whatever --verbose asks for: secrets must not reach logs.
_WIRE_LOGGERS = ("aiokafka", "kafka")


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _WIRE_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
