"""A real single-node Kafka broker for tests, driven through ``kafka/broker.sh``.

The broker is Apache Kafka in KRaft combined mode (broker and controller in one JVM) on
127.0.0.1 and a free port; its jars are resolved from Maven Central by ``kafka/pom.xml`` the
first time and reused from ``kafka/target/lib`` afterwards. For tests and development only.

This module does not import pytest, so scripts can use it too::

    with KafkaBroker(Path("/tmp/gw-kafka")) as broker:
        print(broker.bootstrap)  # "127.0.0.1:PORT"

Secured listeners are opened next to the PLAINTEXT one on request: SASL_PLAINTEXT and
SASL_SSL accept ``sasl_users`` with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (a user named
``MECHANISM/name`` is accepted with that mechanism only), and SSL requires a client
certificate (mutual TLS). The certificates are made on first start in
``workdir/tls`` (``tests/kafka_tls.py``, with openssl)::

    broker = KafkaBroker(path, listeners=SECURE_LISTENERS, sasl_users={"alice": "pw"})
    broker.start()
    broker.listener_bootstrap("SASL_SSL")  # "127.0.0.1:PORT"
    broker.tls.ca_cert, broker.tls.client_cert, broker.tls.client_key
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.kafka_tls import TlsFiles, generate_tls

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_DIR = REPO_ROOT / "kafka"
BROKER_SCRIPT = KAFKA_DIR / "broker.sh"
RESOLVED_MARK = KAFKA_DIR / "target" / "lib" / ".resolved"
MIN_JAVA = 17

# First start may resolve jars with Maven (about 10 s on a warm network, bounded by
# KAFKA_RESOLVE_TIMEOUT in the script); the broker itself comes up in a few seconds.
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0

# The listeners broker.sh can open besides PLAINTEXT (KAFKA_SECURITY), by security protocol.
SECURE_LISTENERS = ("SASL_PLAINTEXT", "SSL", "SASL_SSL")
TLS_LISTENERS = frozenset({"SSL", "SASL_SSL"})
SASL_LISTENERS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
DEFAULT_SASL_USERS: Mapping[str, str] = {"gatewatch": "gatewatch-secret"}
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_CREDENTIAL = re.compile(r"[A-Za-z0-9._@+-]+")


class KafkaBrokerError(RuntimeError):
    """broker.sh failed; the message carries its output (including the broker log tail)."""


class KafkaBroker:
    """One broker whose configuration, data and log live in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        start_timeout: float = START_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
        stop_with_this_process: bool = True,
        listeners: Iterable[str] = (),
        sasl_users: Mapping[str, str] | None = None,
    ) -> None:
        """``listeners``: secured listeners to open besides PLAINTEXT, any of
        ``SECURE_LISTENERS``. ``sasl_users``: user -> password for the SASL ones (letters,
        digits and ``._@+-``; default ``DEFAULT_SASL_USERS``), good for every mechanism, or
        for one when the key is ``MECHANISM/user`` (``{"SCRAM-SHA-512/alice": "pw"}``).
        SCRAM users are created when the storage is formatted, so keep them the same across
        starts of one ``workdir``."""
        self.workdir = Path(workdir).resolve()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        # Ask broker.sh to stop the broker once this process is gone, so a test run that is
        # killed outright does not leave a JVM behind.
        self.stop_with_this_process = stop_with_this_process
        wanted = {name.upper() for name in listeners}
        unknown = wanted - set(SECURE_LISTENERS)
        if unknown:
            raise ValueError(f"unknown listeners {sorted(unknown)}; use {SECURE_LISTENERS}")
        self.listeners: tuple[str, ...] = tuple(n for n in SECURE_LISTENERS if n in wanted)
        users = dict(DEFAULT_SASL_USERS if sasl_users is None else sasl_users)
        for key, password in users.items():
            mechanism, _, user = key.rpartition("/")
            if mechanism and mechanism not in SASL_MECHANISMS:
                raise ValueError(f"SASL user {key!r}: the mechanism is one of {SASL_MECHANISMS}")
            if not (_CREDENTIAL.fullmatch(user) and _CREDENTIAL.fullmatch(password)):
                raise ValueError(
                    f"SASL user {key!r}: names and passwords take letters, digits and ._@+- only"
                )
        if not users and SASL_LISTENERS & wanted:
            raise ValueError("the SASL listeners need at least one user")
        self.sasl_users: dict[str, str] = users if SASL_LISTENERS & wanted else {}

    @property
    def bootstrap(self) -> str:
        """``host:port`` of the running broker's PLAINTEXT listener."""
        path = self.workdir / "bootstrap"
        if not path.is_file():
            raise KafkaBrokerError(f"the broker in {self.workdir} is not running")
        return path.read_text(encoding="utf-8").strip()

    def listener_bootstrap(self, protocol: str) -> str:
        """``host:port`` of the running broker's listener for ``protocol`` (PLAINTEXT or one
        of ``listeners``)."""
        protocol = protocol.upper()
        if protocol == "PLAINTEXT":
            return self.bootstrap
        if protocol not in self.listeners:
            raise KafkaBrokerError(f"the broker in {self.workdir} has no {protocol} listener")
        path = self.workdir / f"bootstrap_{protocol.lower()}"
        if not path.is_file():
            raise KafkaBrokerError(f"the broker in {self.workdir} is not running")
        return path.read_text(encoding="utf-8").strip()

    @property
    def tls(self) -> TlsFiles | None:
        """The CA, broker and client certificates and keys (PEM) when a listener uses TLS;
        made by ``start``."""
        if not TLS_LISTENERS & set(self.listeners):
            return None
        return TlsFiles.at(self.workdir / "tls")

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def pid(self) -> int | None:
        path = self.workdir / "broker.pid"
        if not path.is_file():
            return None
        return int(path.read_text(encoding="utf-8").strip())

    def start(self) -> str:
        """Start the broker (formatting its storage the first time) and return its bootstrap."""
        self._run("start", self.start_timeout)
        return self.bootstrap

    def stop(self) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it does not exit in time. Idempotent."""
        self._run("stop", self.stop_timeout)

    def restart(self) -> str:
        """Stop and start again on the same ports and data; return the bootstrap."""
        self._run("restart", self.stop_timeout + self.start_timeout)
        return self.bootstrap

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _security_env(self) -> dict[str, str]:
        """broker.sh's KAFKA_SECURITY variables for this broker (none set means PLAINTEXT
        only, whatever the calling shell has)."""
        env = {"KAFKA_SECURITY": ",".join(name.lower() for name in self.listeners)}
        if self.sasl_users:
            env["KAFKA_SASL_USERS"] = ",".join(f"{u}:{p}" for u, p in self.sasl_users.items())
        tls = self.tls
        if tls is not None:
            tls = generate_tls(tls.directory)
            env["KAFKA_SSL_CA"] = str(tls.ca_cert)
            env["KAFKA_SSL_CERT"] = str(tls.broker_cert)
            env["KAFKA_SSL_KEY"] = str(tls.broker_key)
        return env

    def _run(self, command: str, timeout: float) -> str:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("KAFKA_SECURITY", "KAFKA_SASL_USERS") and not k.startswith("KAFKA_SSL_")
        }
        if self.stop_with_this_process:
            env["KAFKA_WATCH_PID"] = str(os.getpid())
        if command != "stop":
            env.update(self._security_env())
        try:
            done = subprocess.run(
                ["bash", str(BROKER_SCRIPT), command, str(self.workdir)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            if command != "stop":
                # Do not leave a half-started broker behind.
                subprocess.run(
                    ["bash", str(BROKER_SCRIPT), "stop", str(self.workdir)],
                    capture_output=True,
                    timeout=self.stop_timeout,
                    check=False,
                )
            raise KafkaBrokerError(f"broker.sh {command} timed out after {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise KafkaBrokerError(
                f"broker.sh {command} {self.workdir} exited {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done.stdout


def _java_major(java: str) -> int | None:
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_..."
    return int(match.group(2) or 0) if major == 1 else major


def kafka_available() -> tuple[bool, str]:
    """Whether a broker can be started here: Java 17+, and the jars resolved or Maven present."""
    if not BROKER_SCRIPT.is_file():
        return False, f"{BROKER_SCRIPT} is missing"
    if shutil.which("bash") is None:
        return False, "bash is not on PATH"
    java = shutil.which("java")
    if java is None:
        return False, "java is not on PATH (Kafka 4 needs Java 17+)"
    major = _java_major(java)
    if major is None or major < MIN_JAVA:
        return False, f"Kafka 4 needs Java {MIN_JAVA}+, found {major or 'an unknown version'}"
    if RESOLVED_MARK.is_file():
        return True, "jars resolved in kafka/target/lib"
    if shutil.which("mvn") is None:
        return False, "the Kafka jars are not resolved and mvn is not on PATH"
    return True, "jars will be resolved with Maven on first start"


__all__ = [
    "DEFAULT_SASL_USERS",
    "SASL_MECHANISMS",
    "SECURE_LISTENERS",
    "KafkaBroker",
    "KafkaBrokerError",
    "kafka_available",
]
