"""The Kafka source: consumer and producer clients built from ``KafkaSettings``.

Offsets are never committed automatically: the caller commits only what it has stored
(see ``gatewatch.kafka_ingest``). Security settings pass straight through to aiokafka:
SASL (PLAIN, SCRAM-SHA-256/512) and TLS, with a client certificate for mutual TLS.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.helpers import create_ssl_context

from gatewatch.errors import ConfigError
from gatewatch.settings import KafkaSettings

SOURCE_PREFIX = "kafka:"


def source_name(topic: str, partition: int) -> str:
    """The ``source`` of every record from one partition.

    >>> source_name("kong-logs", 3)
    'kafka:kong-logs/3'
    """
    return f"{SOURCE_PREFIX}{topic}/{partition}"


class _PassPhraseNeededError(Exception):
    """The client key is encrypted and no ``ssl_password`` was given."""


def _no_pass_phrase() -> str:
    raise _PassPhraseNeededError


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """A TLS context for the SSL protocols (CA, and client certificate for mutual TLS).

    Files that cannot be loaded are a ``ConfigError``. Without ``ssl_password`` the
    password is a callable that refuses, not ``None``: with ``None``, OpenSSL would ask
    for an encrypted key's pass phrase on the terminal and a service would wait there.
    """
    if settings.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    password: str | Callable[[], str] = (
        settings.ssl_password.get_secret_value() if settings.ssl_password else _no_pass_phrase
    )
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.ssl_cafile,
            certfile=settings.ssl_certfile,
            keyfile=settings.ssl_keyfile,
            password=password,
        )
    except _PassPhraseNeededError:
        problem = ("kafka.ssl_password", f"{settings.ssl_keyfile} is encrypted: set ssl_password")
        raise ConfigError("settings", [problem]) from None
    except OSError as exc:  # ssl.SSLError too: missing, unreadable or mismatched files
        files = ", ".join(
            f"{key}={path}"
            for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
            if (path := getattr(settings, key)) is not None
        )
        problem = ("kafka.ssl_*", f"cannot load the TLS files ({files or 'system CAs'}): {exc}")
        raise ConfigError("settings", [problem]) from None
    return context


def connection_options(settings: KafkaSettings) -> dict[str, Any]:
    """What consumers and producers share: where the brokers are and how to log in."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "ssl_context": ssl_context(settings),
    }
    if settings.security_protocol.startswith("SASL"):
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else None
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=password,
        )
    return options


def build_consumer(settings: KafkaSettings) -> AIOKafkaConsumer:
    """A group consumer with manual commits; subscribe it to topics before ``start``.

    Must be called inside a running event loop (aiokafka binds to it).
    """
    return AIOKafkaConsumer(
        **connection_options(settings),
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset=settings.auto_offset_reset,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
        session_timeout_ms=settings.session_timeout_ms,
        max_poll_interval_ms=settings.max_poll_interval_ms,
    )


def build_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (for dead letters)."""
    return AIOKafkaProducer(
        **connection_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
