"""Kafka security end to end: ``gatewatch run`` against a real broker's secured listeners.

One broker for the module opens SASL_PLAINTEXT, SASL_SSL (both with PLAIN, SCRAM-SHA-256
and SCRAM-SHA-512) and SSL that requires a client certificate, next to PLAINTEXT. The
records are produced once over PLAINTEXT; each test runs ``gatewatch run`` with the
security settings a user would write, given only one secured listener's address, and
checks what it stored. Both of its clients (the group consumer and the dead-letter
producer) take these settings from ``ingest.sources.kafka.connection_options``, so this
proves they reach aiokafka and that the broker accepts them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.integration.conftest import (
    CLIENT_TIMEOUT_S,
    Consumer,
    _create_topics,
    _produce,
    consumer_command,
    store_counts,
    wait_until,
)
from tests.integration.test_kafka_ingest import _read_topic
from tests.kafka_broker import REPO_ROOT, SECURE_LISTENERS, KafkaBroker, kafka_available
from tests.kafka_tls import TlsFiles, tls_available

pytestmark = pytest.mark.timeout(120)

TOPIC = "gw-sec-canonical"
RECORDS = 200  # every 100th is garbage (conftest's _produce), so dead letters are made too
# One user per mechanism, known to the broker for that mechanism only: a client that sent
# another mechanism than the one configured would be refused. Passwords are random per run,
# so finding one in the output cannot be a coincidence.
USERS = {
    mechanism: (f"gw-{mechanism.lower()}", f"pw-{secrets.token_hex(10)}")
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
}
PASSWORDS = [password for _, password in USERS.values()]
WRONG_PASSWORD = f"wrong-{secrets.token_hex(10)}"
CATCH_UP_TIMEOUT_S = 60.0
FAIL_TIMEOUT_S = 60.0  # a refused connection fails at once; this only bounds a hang

MakeConsumer = Callable[[str, str], Consumer]


@dataclass(frozen=True, slots=True)
class Secured:
    broker: KafkaBroker
    tls: TlsFiles
    records: int
    garbage: int


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """A broker with every secured listener, and RECORDS canonical lines in TOPIC."""
    for available, reason in (kafka_available(), tls_available()):
        if not available:
            pytest.skip(f"no secured Kafka test broker here: {reason}")
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka-secure"),
        listeners=SECURE_LISTENERS,
        sasl_users={f"{mechanism}/{user}": pw for mechanism, (user, pw) in USERS.items()},
    )
    try:
        broker.start()
        assert broker.tls is not None
        asyncio.run(_create_topics(broker.bootstrap, [TOPIC]))
        garbage = asyncio.run(_produce(broker.bootstrap, TOPIC, "canonical", RECORDS, seed=11))
        yield Secured(broker=broker, tls=broker.tls, records=RECORDS, garbage=garbage)
    finally:
        broker.stop()


@pytest.fixture
def make_consumer(secured: Secured, tmp_path: Path) -> Iterator[MakeConsumer]:
    """Consumers (name, listener protocol) of TOPIC, given only that listener's address;
    any still running at the end of the test is killed."""
    made: list[Consumer] = []

    def make(name: str, protocol: str) -> Consumer:
        consumer = Consumer(
            tmp_path / name,
            bootstrap=secured.broker.listener_bootstrap(protocol),
            group=f"gw-sec-{name}",
            topics={TOPIC: "canonical"},
        )
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        if consumer.running:
            consumer.kill()


def _sasl(mechanism: str, password: str | None = None) -> dict[str, str]:
    """SASL settings for the user of ``mechanism``, with its password unless another is given."""
    user, right = USERS[mechanism]
    return {"sasl_mechanism": mechanism, "sasl_username": user, "sasl_password": password or right}


def _shows_a_password(output: str) -> bool:
    return any(password in output for password in [*PASSWORDS, WRONG_PASSWORD])


# case -> (listener, [kafka] settings); paths are filled in from the broker's TlsFiles.
CASES: dict[str, tuple[str, Callable[[TlsFiles], dict[str, Any]]]] = {
    "sasl-plaintext-plain": (
        "SASL_PLAINTEXT",
        lambda _: {"security_protocol": "SASL_PLAINTEXT", **_sasl("PLAIN")},
    ),
    "sasl-plaintext-scram-sha-256": (
        "SASL_PLAINTEXT",
        lambda _: {"security_protocol": "SASL_PLAINTEXT", **_sasl("SCRAM-SHA-256")},
    ),
    "sasl-ssl-scram-sha-512": (
        "SASL_SSL",
        lambda tls: {
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(tls.ca_cert),
            **_sasl("SCRAM-SHA-512"),
        },
    ),
    # The encrypted client key, so that ssl_password is exercised as well.
    "mutual-tls": (
        "SSL",
        lambda tls: {
            "security_protocol": "SSL",
            "ssl_cafile": str(tls.ca_cert),
            "ssl_certfile": str(tls.client_cert),
            "ssl_keyfile": str(tls.client_key_encrypted),
            "ssl_password": tls.client_key_password,
        },
    ),
}


def _committed(bootstrap: str, group: str) -> int:
    """The sum of the group's committed offsets on TOPIC; 0 while the broker cannot say
    yet (no group coordinator right after start-up)."""

    async def fetch() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        await asyncio.wait_for(admin.start(), CLIENT_TIMEOUT_S)
        try:
            offsets = await asyncio.wait_for(
                admin.list_consumer_group_offsets(group), CLIENT_TIMEOUT_S
            )
        finally:
            await admin.close()
        return sum(
            meta.offset for tp, meta in offsets.items() if tp.topic == TOPIC and meta.offset > 0
        )

    try:
        return asyncio.run(fetch())
    except KafkaError as exc:
        if not exc.retriable:
            raise
        return 0


def _failed_run(consumer: Consumer, **kafka: Any) -> tuple[int, str]:
    """Run ``gatewatch run`` that must fail: its exit code and its output."""
    code = consumer.start(**kafka).wait(FAIL_TIMEOUT_S)
    output = consumer.output() + consumer.log()
    assert code != 0, output
    return code, output


@pytest.mark.parametrize("case", list(CASES))
def test_secured_listener_stores_every_record(
    secured: Secured, make_consumer: MakeConsumer, case: str
) -> None:
    protocol, settings = CASES[case]
    dead_topic = f"gw-sec-dead-{case}"
    consumer = make_consumer(case, protocol)
    consumer.start(**settings(secured.tls), dead_letter_topic=dead_topic)
    plaintext = secured.broker.bootstrap

    def caught_up() -> bool:
        assert consumer.running, f"gatewatch run exited early:\n{consumer.log()}"
        return _committed(plaintext, consumer.group) >= secured.records

    wait_until(caught_up, timeout=CATCH_UP_TIMEOUT_S, what=f"the {case} consumer to commit")
    assert consumer.terminate() == 0, consumer.log()

    # It read through the secured listener (the only address it had) ...
    assert f"from {consumer.bootstrap}" in consumer.log(), consumer.log()
    assert consumer.consumed()[0] == secured.records
    # ... stored every record, once ...
    counts = store_counts(consumer.data_dir)
    assert counts["events"] + counts["dead_letters"] == secured.records, counts
    assert counts["dead_letters"] == secured.garbage, counts
    assert counts["duplicate_keys"] == 0, counts
    # ... and its dead-letter producer got through with the same settings.
    dead = asyncio.run(_read_topic(plaintext, dead_topic, secured.garbage))
    assert len(dead) == secured.garbage, dead
    assert {letter["topic"] for letter in dead} == {TOPIC}, dead
    assert not _shows_a_password(consumer.output() + consumer.log())


@pytest.mark.parametrize(
    ("protocol", "mechanism"), [("SASL_PLAINTEXT", "PLAIN"), ("SASL_SSL", "SCRAM-SHA-512")]
)
def test_wrong_sasl_password_fails_without_showing_it(
    secured: Secured, make_consumer: MakeConsumer, protocol: str, mechanism: str
) -> None:
    consumer = make_consumer("wrong-password", protocol)
    settings: dict[str, Any] = {"security_protocol": protocol, **_sasl(mechanism, WRONG_PASSWORD)}
    if protocol == "SASL_SSL":
        settings["ssl_cafile"] = str(secured.tls.ca_cert)
    code, output = _failed_run(consumer, **settings)

    assert code == 1, output
    assert f"cannot connect to Kafka at {consumer.bootstrap}" in output, output
    # The reason is in aiokafka's error line, not in gatewatch's own last line.
    assert "SaslAuthenticationFailed" in output, output
    assert "authentication failed" in output.lower(), output
    assert not _shows_a_password(output)


def test_wrong_sasl_password_is_not_shown_at_debug_level(make_consumer: MakeConsumer) -> None:
    consumer = make_consumer("wrong-password-debug", "SASL_PLAINTEXT")
    _failed_run(consumer, security_protocol="SASL_PLAINTEXT", **_sasl("PLAIN", WRONG_PASSWORD))
    command = consumer_command(consumer.config)
    done = subprocess.run(
        [*command[:-1], "-v", command[-1]],  # gatewatch --config FILE -v run
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=FAIL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert WRONG_PASSWORD not in done.stdout + done.stderr


def test_mutual_tls_listener_refuses_a_client_without_certificate(
    secured: Secured, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer("no-client-cert", "SSL")
    broker_log = secured.broker.log_path
    log_offset = broker_log.stat().st_size
    code, output = _failed_run(
        consumer, security_protocol="SSL", ssl_cafile=str(secured.tls.ca_cert)
    )

    assert code == 1, output
    assert f"cannot connect to Kafka at {consumer.bootstrap}" in output, output
    # The client only sees the connection closed; the broker says why (it may log that a
    # moment after the client gave up).
    port = consumer.bootstrap.rpartition(":")[2]

    def broker_refused() -> bool:
        with broker_log.open("rb") as log:
            log.seek(log_offset)
            appended = log.read().decode(errors="replace")
        return any(
            "Failed authentication" in line
            and f"channelId=127.0.0.1:{port}-" in line
            and "SSL handshake failed" in line
            for line in appended.splitlines()
        )

    wait_until(broker_refused, timeout=10, what="the broker to log the failed TLS handshake")


def test_encrypted_client_key_without_ssl_password_is_a_config_error(
    secured: Secured, make_consumer: MakeConsumer
) -> None:
    consumer = make_consumer("no-key-password", "SSL")
    tls = secured.tls
    code, output = _failed_run(
        consumer,
        security_protocol="SSL",
        ssl_cafile=str(tls.ca_cert),
        ssl_certfile=str(tls.client_cert),
        ssl_keyfile=str(tls.client_key_encrypted),
    )
    assert code == 2, output  # an invalid configuration
    assert "kafka.ssl_password" in output, output
    assert "pass phrase" not in output.lower(), output  # OpenSSL never asked for one
    assert "Traceback" not in output, output
    assert tls.client_key_password not in output


def test_simulate_produces_to_a_secured_listener_with_the_config(
    secured: Secured, tmp_path: Path
) -> None:
    # Test traffic for a secured cluster: ``gatewatch simulate --kafka`` logs in with the
    # same [kafka] settings ``gatewatch run`` uses (here SASL_SSL with SCRAM-SHA-512).
    topic = "gw-sec-simulated"
    asyncio.run(_create_topics(secured.broker.bootstrap, [topic]))
    user, password = USERS["SCRAM-SHA-512"]
    config = tmp_path / "gatewatch.toml"
    config.write_text(
        "[kafka]\n"
        'security_protocol = "SASL_SSL"\n'
        f'ssl_cafile = "{secured.tls.ca_cert}"\n'
        'sasl_mechanism = "SCRAM-SHA-512"\n'
        f'sasl_username = "{user}"\n'
        f'sasl_password = "{password}"\n',
        encoding="utf-8",
    )
    listener = secured.broker.listener_bootstrap("SASL_SSL")
    done = subprocess.run(
        [sys.executable, "-m", "gatewatch", "-c", str(config), "simulate", "--count", "50",
         "--seed", "5", "--kafka", listener, "--topic", topic],
        check=False,
        cwd=REPO_ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")},
            "GATEWATCH_DATA_DIR": str(tmp_path / "data"),
        },
        capture_output=True,
        text=True,
        timeout=FAIL_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"produced 50 canonical messages to {topic}" in done.stderr
    assert not _shows_a_password(done.stdout + done.stderr)
    # Read back over PLAINTEXT: every simulated request arrived.
    values = asyncio.run(_read_topic(secured.broker.bootstrap, topic, 50))
    assert len(values) == 50 and all("request_id" in v for v in values)
