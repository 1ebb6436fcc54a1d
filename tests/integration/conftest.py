"""Fixtures for tests against a real Kafka broker (``tests/kafka_broker.py``).

One broker for the session, two topics of six partitions holding 50,000 simulated
gateway log lines (1% garbage) produced once, and consumer processes that each have
their own data directory (chDB allows one engine path per process). Tests read a
consumer's store from a separate short-lived process, after the consumer has exited.
Every test uses its own consumer group, so each one reads the same records from the
start.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from tests.kafka_broker import REPO_ROOT, KafkaBroker, kafka_available

PARTITIONS = 6
TOPICS = {"gw-it-canonical": ("canonical", 30_000), "gw-it-nginx": ("nginx", 20_000)}
GARBAGE_EVERY = 100  # 1%
SECRET = "s3cr3t-do-not-store"
CLIENT_TIMEOUT_S = 30.0
CONSUMER_EXIT_TIMEOUT_S = 60.0

# Each record of a topic is a simulated line, except every GARBAGE_EVERY-th, which is one
# of these (a tombstone when None). Some keys carry a credential that must be masked.
GARBAGE: tuple[bytes | None, ...] = (
    b"this is not a log line",
    b'{"ts": "2026-01-01T00:00:00Z", "client_ip": "10.0.0.1", "path": "/tr',
    b"\x00\xff\xfe binary \x80\x81",
    b"   ",
    None,
    b"GET /login?password=" + SECRET.encode() + b" HTTP/1.1",
)


@dataclass(frozen=True, slots=True)
class Dataset:
    """What the session's topics hold."""

    bootstrap: str
    topics: dict[str, str]  # topic -> format
    total: int
    garbage: int


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker for the whole session, stopped at its end."""
    available, reason = kafka_available()
    if not available:
        pytest.skip(f"no Kafka test broker here: {reason}")
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def dataset(kafka: KafkaBroker) -> Dataset:
    """The topics, created with six partitions and filled once for the session."""
    bootstrap = kafka.bootstrap
    asyncio.run(_create_topics(bootstrap, list(TOPICS)))
    garbage = 0
    for seed, (topic, (fmt, count)) in enumerate(TOPICS.items(), start=1):
        garbage += asyncio.run(_produce(bootstrap, topic, fmt, count, seed))
    return Dataset(
        bootstrap=bootstrap,
        topics={topic: fmt for topic, (fmt, _) in TOPICS.items()},
        total=sum(count for _, count in TOPICS.values()),
        garbage=garbage,
    )


async def _create_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await asyncio.wait_for(admin.start(), CLIENT_TIMEOUT_S)
    try:
        await asyncio.wait_for(
            admin.create_topics(
                [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in topics]
            ),
            CLIENT_TIMEOUT_S,
        )
    finally:
        await admin.close()


async def send_values(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Produce ``values`` to ``topic``, each acknowledged by the broker."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await asyncio.wait_for(producer.start(), CLIENT_TIMEOUT_S)
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _produce(bootstrap: str, topic: str, fmt: str, count: int, seed: int) -> int:
    """``count`` records keyed by client IP, timestamps from an hour ago; returns how
    many are garbage."""
    render = RENDERERS[fmt]
    config = SimulationConfig(seed=seed, start_ts=time.time() - 3600, count=count, duration_s=None)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=1 << 20,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=30_000,
    )
    await asyncio.wait_for(producer.start(), CLIENT_TIMEOUT_S)
    garbage = 0
    try:
        pending = []
        for i, request in enumerate(generate(config)):
            key = request.client_ip.encode()
            value: bytes | None = render(request)
            if i % GARBAGE_EVERY == GARBAGE_EVERY - 1:
                value = GARBAGE[garbage % len(GARBAGE)]
                key = f"{request.client_ip} token={SECRET}".encode() if garbage % 3 == 0 else key
                garbage += 1
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 10_000:
                await asyncio.wait_for(asyncio.gather(*pending), 120)
                pending.clear()
        await asyncio.wait_for(asyncio.gather(*pending), 120)
    finally:
        await producer.stop()
    return garbage


class Consumer:
    """One ``gatewatch`` Kafka consumer process with its own config and data directory."""

    def __init__(
        self, workdir: Path, *, bootstrap: str, group: str, topics: dict[str, str]
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config = workdir / "gatewatch.toml"
        self.bootstrap = bootstrap
        self.group = group
        self.topics = topics
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._out: Path | None = None

    def start(self, *, metrics: bool = False, **kafka: Any) -> Consumer:
        """Start (again), with extra ``[kafka]`` settings for this run, and with
        /metrics on a free port when asked (``metrics_url`` finds it)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"consumer {self.workdir.name} is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self._toml(kafka, metrics=metrics), encoding="utf-8")
        self.runs += 1
        self._log = self.workdir / f"run{self.runs}.log"
        self._out = self.workdir / f"run{self.runs}.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
        with self._log.open("wb") as err, self._out.open("wb") as out:
            self.proc = subprocess.Popen(
                consumer_command(self.config), cwd=REPO_ROOT, env=env, stdout=out, stderr=err
            )
        return self

    def _toml(self, kafka: dict[str, Any], *, metrics: bool) -> str:
        settings = {
            "bootstrap_servers": [self.bootstrap],
            "group_id": self.group,
            "client_id": f"gw-{self.workdir.name}",
            "session_timeout_ms": 10_000,
            "max_batch_records": 2_000,
            "fetch_max_wait_ms": 100,
            **kafka,
        }
        lines = [f'data_dir = "{self.data_dir}"', ""]
        lines += ["[ingest]", 'fingerprint_salt = "integration-salt"', ""]
        lines += ["[storage]", "batch_max_rows = 50000", "batch_max_seconds = 10.0", ""]
        lines += ["[metrics]", f"enabled = {str(metrics).lower()}", "port = 0", ""]
        lines += ["[kafka]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()] + [""]
        lines += ["[kafka.topics]"] + [f'"{t}" = "{f}"' for t, f in self.topics.items()]
        return "\n".join(lines) + "\n"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = CONSUMER_EXIT_TIMEOUT_S) -> int:
        """SIGTERM, and the exit code once it has stopped."""
        proc = self._proc()
        proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        proc = self._proc()
        proc.kill()
        proc.wait(timeout=CONSUMER_EXIT_TIMEOUT_S)

    def wait(self, timeout: float = CONSUMER_EXIT_TIMEOUT_S) -> int:
        try:
            return self._proc().wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"consumer {self.workdir.name} did not exit in {timeout:.0f} s\n{self.log()}"
            ) from None

    def metrics_url(self) -> str | None:
        """Where this run serves /metrics, once it has said so in its log."""
        for line in self.log().splitlines():
            if "metrics on http://127.0.0.1:" in line:
                return line.rsplit(" ", 1)[1]
        return None

    def log(self) -> str:
        return self._log.read_text(errors="replace") if self._log else ""

    def output(self) -> str:
        return self._out.read_text(errors="replace") if self._out else ""

    def consumed(self) -> tuple[int, float | None]:
        """Records consumed by the last run, and its CPU seconds when it says (from the
        summary line it prints on exit)."""
        match = re.search(
            r"^consumed (\d+) records.*?(?:\(([\d.]+) CPU s\))?$", self.output(), re.M
        )
        if match is None:
            raise AssertionError(
                f"no summary from {self.workdir.name}:\n{self.output()}{self.log()}"
            )
        cpu = float(match.group(2)) if match.group(2) else None
        return int(match.group(1)), cpu

    def _proc(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            raise RuntimeError(f"consumer {self.workdir.name} never started")
        return self.proc


def consumer_command(config: Path) -> list[str]:
    """The consumer's command line: ``gatewatch run`` as a user runs it."""
    return [sys.executable, "-m", "gatewatch", "--config", str(config), "run"]


@pytest.fixture
def consumers(tmp_path: Path, dataset: Dataset) -> Iterator[Callable[[str, str], Consumer]]:
    """A factory of consumers (name, group) on the dataset; any still running at the end
    of the test is killed."""
    made: list[Consumer] = []

    def make(name: str, group: str) -> Consumer:
        consumer = Consumer(
            tmp_path / name, bootstrap=dataset.bootstrap, group=group, topics=dataset.topics
        )
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        if consumer.running:
            consumer.kill()


_QUERY_SCRIPT = """
import json, sys
from gatewatch.settings import load_settings
from gatewatch.wiring import open_store
store = open_store(load_settings(None, data_dir=sys.argv[1]))
queries = json.loads(sys.argv[2])
db = store.database
out = {name: store.query(sql.format(db=db)) for name, sql in queries.items()}
print(json.dumps({name: rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else rows
                  for name, rows in out.items()}, default=list))
store.close()
"""

COUNTS = {
    "events": "SELECT count() FROM {db}.events FINAL",
    "dead_letters": "SELECT count() FROM {db}.dead_letters FINAL",
    "duplicate_keys": "SELECT count() - uniqExact(source, position) FROM {db}.events FINAL",
    "secrets": "SELECT countIf(position(key, %(secret)s) > 0 OR position(raw, %(secret)s) > 0) "
    "FROM {db}.dead_letters",
}


def findings_metric(consumer: Consumer) -> float:
    """The findings a running consumer reports on /metrics (0 without metrics)."""
    return metric_total(consumer, "gatewatch_findings_total")


def metric_total(consumer: Consumer, name: str) -> float:
    """The sum of a counter's series on a running consumer's /metrics (0 without)."""
    url = consumer.metrics_url()
    if url is None:
        return 0.0
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    )


def query_store(data_dir: Path, queries: dict[str, str]) -> dict[str, Any]:
    """Run queries (``{db}`` is the database) against a consumer's store, from a fresh
    process; single values come back as scalars, anything else as rows."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    done = subprocess.run(
        [sys.executable, "-c", _QUERY_SCRIPT, str(data_dir), json.dumps(queries)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"querying {data_dir} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def store_counts(data_dir: Path) -> dict[str, int]:
    queries = {name: sql.replace("%(secret)s", f"'{SECRET}'") for name, sql in COUNTS.items()}
    return {name: int(value) for name, value in query_store(data_dir, queries).items()}


def stored_keys(data_dir: Path) -> set[tuple[str, int]]:
    """Every (source, position) in the events and dead letters of a store."""
    rows = query_store(
        data_dir,
        {
            "keys": "SELECT source, position FROM {db}.events FINAL "
            "UNION ALL SELECT source, position FROM {db}.dead_letters FINAL"
        },
    )["keys"]
    return {(str(source), int(position)) for source, position in rows}


def committed(bootstrap: str, group: str) -> int:
    """The sum of the group's committed offsets over the dataset's topics; 0 while the
    broker cannot say yet (no group coordinator, or the broker is restarting)."""

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
            meta.offset for tp, meta in offsets.items() if tp.topic in TOPICS and meta.offset > 0
        )

    try:
        return asyncio.run(fetch())
    except KafkaError as exc:
        if not exc.retriable:
            raise
        return 0


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.3
) -> float:
    """Poll ``check`` until it holds; returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started
