"""Shared fixtures: settings in a temp dir, an embedded store, the shared data path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewatch.settings import ENV_PREFIX, Settings, load_settings
from gatewatch.store.client import Store

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _no_gatewatch_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests see only the settings they set, not the developer's shell."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        data_dir=str(tmp_path / "data"),
        ingest={"fingerprint_salt": "test-salt", "trusted_proxies": ["10.0.0.0/8"]},
    )


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One embedded chDB for the session (chDB allows one engine path per process);
    tests isolate themselves with their own database names."""
    path = tmp_path_factory.mktemp("chdb")
    store = Store(f"chdb://{path}", database="gw_session")
    yield store
    store.close()


@pytest.fixture
def store(shared_store: Store, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A freshly migrated database in the session's engine, dropped afterwards."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50]
    database_store = Store(shared_store.dsn, database=name)
    database_store.migrate()
    yield database_store
    database_store.command(f"DROP DATABASE IF EXISTS {name}")


def store_settings(settings: Settings, store: Store) -> Settings:
    """Settings pointing at the test's store."""
    return load_settings(
        None,
        data_dir=str(settings.data_dir),
        ingest={"fingerprint_salt": "test-salt", "trusted_proxies": ["10.0.0.0/8"]},
        storage={"dsn": store.dsn, "database": store.database},
    )


__all__ = ["FIXTURES", "store_settings"]
