from __future__ import annotations

from pathlib import Path

import pytest

from gatewatch.errors import ConfigError
from gatewatch.settings import load_settings
from gatewatch.wiring import build_detectors


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gatewatch.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file() -> None:
    settings = load_settings(None)
    assert settings.ingest.format == "auto"
    assert settings.storage.retention_days == 90
    assert settings.storage_dsn.startswith("chdb:///")
    assert settings.storage_dsn.endswith("/clickhouse")


def test_file_values_and_environment_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        '[storage]\nretention_days = 14\nbatch_max_rows = 1000\n[ingest]\nformat = "kong"\n',
    )
    monkeypatch.setenv("GATEWATCH_STORAGE__BATCH_MAX_ROWS", "5000")
    settings = load_settings(path)
    assert settings.storage.retention_days == 14  # from the file
    assert settings.storage.batch_max_rows == 5000  # the environment wins
    assert settings.ingest.format == "kong"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[storage]\nretention_days = -5\n", "storage.retention_days", "greater than 0"),
        ("[storage]\nretension_days = 5\n", "storage.retension_days", "unknown key"),
        ('[storage]\ndsn = "mysql://x"\n', "storage.dsn", "must start with chdb://"),
        ('[ingest]\nformat = "syslog"\n', "ingest", "unknown log format 'syslog'"),
        ('[ingest]\ntrusted_proxies = ["10.0.0.0/33"]\n', "ingest.trusted_proxies", "CIDR"),
        ('[ingest.mappings.app]\nfields = {ts = "time"}\n', "ingest.mappings.app.fields", "path"),
        (
            '[ingest.mappings.app]\nfields = {ts = "t", path = "p", status = "s", '
            'client_ip = "ip", colour = "c"}\n',
            "ingest.mappings.app.fields",
            "colour",
        ),
        ('[logging]\nlevel = "LOUD"\n', "logging.level", "DEBUG"),
    ],
)
def test_invalid_file_names_file_key_and_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert key in message
    assert reason in message


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[storage\nretention_days = 5\n")
    with pytest.raises(ConfigError, match=r"gatewatch.toml: not valid TOML: .*line 1"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")


def test_secrets_never_appear_in_errors_or_dumps(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\npassword = "hunter2-secret"\nretention_days = 0\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "hunter2" not in str(caught.value)
    good = write(tmp_path, '[storage]\npassword = "hunter2-secret"\n')
    settings = load_settings(good)
    assert settings.storage.password.get_secret_value() == "hunter2-secret"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.model_dump_json()


def test_mapping_format_is_accepted_when_declared(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[ingest]\nformat = "mapping:app"\n[ingest.mappings.app]\n'
        'fields = {ts = "time", path = "http.path", status = "http.status", '
        'client_ip = "peer.ip"}\n',
    )
    settings = load_settings(path)
    assert settings.ingest.mappings["app"].fields["path"] == "http.path"


def test_detector_tables_are_validated_by_their_type(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        "[detection.detectors.tls_strict]\n"
        'type = "insecure_transport"\n'
        "plain_http = false\n"
        "[detection.detectors.insecure_transport]\nenabled = false\n"
    )
    settings = load_settings(path)
    detectors = build_detectors(settings)
    assert [d.label for d in detectors if d.name == "insecure_transport"] == ["tls_strict"]
    (strict,) = [d for d in detectors if d.label == "tls_strict"]
    assert strict.params.plain_http is False


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('type = "nope"', "x: unknown detector type 'nope'"),
        ("episode_quiet_s = -1", "x.episode_quiet_s: Input should be greater than 0"),
        ("no_such_param = 1", "x.no_such_param: Extra inputs are not permitted"),
        ('allow = { ips = ["not-an-ip"] }', "'not-an-ip' is not an IP address or CIDR"),
    ],
)
def test_bad_detector_config_names_the_detector_and_key(
    tmp_path: Path, table: str, message: str
) -> None:
    path = tmp_path / "gw.toml"
    if "type" not in table:
        table = 'type = "insecure_transport"\n' + table
    path.write_text(f"[detection.detectors.x]\n{table}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "detection.detectors" in str(caught.value) and message in str(caught.value)
