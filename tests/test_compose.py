"""compose.yaml cannot run here (no Docker engine); keep it honest by reading it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatewatch.cli.main import build_parser
from gatewatch.settings import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_services_and_healthchecks() -> None:
    services = COMPOSE["services"]
    assert {"kafka", "clickhouse", "gatewatch", "simulator"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    for name in ("kafka", "clickhouse", "gatewatch", "dashboard"):
        assert "healthcheck" in services[name], name
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    declared = set(COMPOSE["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in declared


def _gatewatch_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for service in COMPOSE["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith(ENV_PREFIX):
                env[key] = re.sub(r"\$\{[^}]+\}", "compose-secret", str(value))
    return env


def _field_exists(path: list[str]) -> bool:
    model: Any = Settings
    for part in path:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        model = fields[part].annotation
    return True


def test_gatewatch_settings_in_compose_are_known() -> None:
    env = _gatewatch_env()
    assert env, "compose passes no GATEWATCH_ settings"
    for key in env:
        path = key.removeprefix(ENV_PREFIX).lower().split("__")
        assert _field_exists(path), f"compose sets {key}, which Gatewatch does not know"


def test_compose_settings_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _gatewatch_env().items():
        monkeypatch.setenv(key, value)
    settings = load_settings(None)
    assert settings.storage_dsn == "http://clickhouse:8123"
    assert settings.ingest.trusted_proxies == json.loads(
        COMPOSE["services"]["gatewatch"]["environment"]["GATEWATCH_INGEST__TRUSTED_PROXIES"]
    )


@pytest.mark.parametrize("service", ["gatewatch", "simulator", "dashboard"])
def test_commands_parse_with_the_cli(service: str) -> None:
    command = COMPOSE["services"][service]["command"]
    args = build_parser().parse_args(command)
    assert callable(args.handler)


def test_healthcheck_command_parses() -> None:
    test = COMPOSE["services"]["gatewatch"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "gatewatch"]
    build_parser().parse_args(test[2:])
