"""Gatewatch's settings: one TOML file plus ``GATEWATCH_*`` environment overrides.

Built once at the entry point (``load_settings``) and passed down; nothing imports a
global. Every section forbids unknown keys, so a typo stops start-up with the file, the
key and the reason instead of being silently ignored. Secrets are ``SecretStr``.

Environment overrides use ``__`` between levels, e.g.
``GATEWATCH_STORAGE__DSN=http://clickhouse:8123`` or ``GATEWATCH_INGEST__FORMAT=kong``.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from alerts.policy import AlertPolicy
from gatewatch.errors import ConfigError
from gatewatch.finding import KINDS, Severity

ENV_PREFIX = "GATEWATCH_"
CONFIG_ENV = "GATEWATCH_CONFIG"

EVENT_FIELDS = (
    "request_id",
    "ts",
    "client_ip",
    "forwarded_for",
    "method",
    "scheme",
    "host",
    "path",
    "query",
    "status",
    "latency_ms",
    "request_bytes",
    "response_bytes",
    "user_agent",
    "user",
    "api_key",
    "api_key_id",
    "authorization",
    "tls_version",
    "body",
    "headers",
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMapping(Section):
    """A user-declared mapping from an application's JSON log to Event fields.

    Each key is an Event field; each value is a dotted path into the log object, e.g.
    ``client_ip = "http.client.address"``.
    """

    fields: dict[str, str]

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(EVENT_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown Event field(s) {', '.join(unknown)}; known: {', '.join(EVENT_FIELDS)}"
            )
        for name in ("ts", "path", "status"):
            if name not in value:
                raise ValueError(f"a mapping must say where {name!r} is")
        if "client_ip" not in value and "forwarded_for" not in value:
            raise ValueError("a mapping must say where 'client_ip' (or 'forwarded_for') is")
        for name, path in value.items():
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"{name}: {path!r} is not a dotted path")
        return value


class RouteSettings(Section):
    """Online route-template learning (``/users/8812`` -> ``/users/{id}``)."""

    openapi: Path | None = None
    max_templates: Annotated[int, Field(gt=0)] = 10_000
    collapse_after: Annotated[int, Field(ge=2)] = 50
    cache_size: Annotated[int, Field(gt=0)] = 100_000


class IngestSettings(Section):
    format: str = "auto"
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="CIDRs whose X-Forwarded-For / Forwarded claims are believed",
    )
    fingerprint_salt: SecretStr | None = Field(
        default=None,
        description="salt for secret fingerprints; generated and kept in data_dir when unset",
    )
    sensitive_query_params: list[str] = Field(
        default_factory=lambda: [
            "api_key",
            "apikey",
            "api-key",
            "key",
            "token",
            "access_token",
            "refresh_token",
            "id_token",
            "auth",
            "password",
            "passwd",
            "pwd",
            "secret",
            "client_secret",
            "signature",
            "sig",
            "session",
            "sessionid",
            "code",
            "x-amz-signature",
            "x-amz-security-token",
        ]
    )
    sensitive_headers: list[str] = Field(
        default_factory=lambda: [
            "authorization",
            "proxy-authorization",
            "cookie",
            "set-cookie",
            "x-api-key",
            "api-key",
            "apikey",
            "x-auth-token",
            "x-access-token",
            "x-csrf-token",
            "x-amz-security-token",
        ]
    )
    max_line_bytes: Annotated[int, Field(gt=0)] = 1_048_576
    max_body_bytes: Annotated[int, Field(ge=0)] = 4096
    max_future_skew_s: Annotated[float, Field(ge=0)] = 86_400.0
    min_ts: Annotated[float, Field(ge=0)] = 946_684_800.0  # 2000-01-01T00:00:00Z
    routes: RouteSettings = RouteSettings()
    mappings: dict[str, FieldMapping] = Field(default_factory=dict)

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP network (CIDR)") from None
        return value

    @field_validator("sensitive_query_params", "sensitive_headers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]

    @model_validator(mode="after")
    def _format_known(self) -> IngestSettings:
        from ingest.parsers import FORMATS  # noqa: PLC0415 - keeps settings importable alone

        if self.format not in FORMATS and self.format.removeprefix("mapping:") not in self.mappings:
            known = ", ".join([*FORMATS, *(f"mapping:{m}" for m in self.mappings)])
            raise ValueError(f"format: unknown log format {self.format!r}; known: {known}")
        return self


class StorageSettings(Section):
    dsn: str = Field(
        default="",
        description="chdb:///path (embedded, the default under data_dir) or http(s)://host:port",
    )
    database: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")] = "gatewatch"
    username: str = "default"
    password: SecretStr = SecretStr("")
    retention_days: Annotated[int, Field(gt=0, le=3650)] = 90
    dead_letter_retention_days: Annotated[int, Field(gt=0, le=3650)] = 30
    batch_max_rows: Annotated[int, Field(gt=0, le=1_000_000)] = 50_000
    batch_max_seconds: Annotated[float, Field(gt=0, le=300)] = 1.0
    dead_letter_max_bytes: Annotated[int, Field(gt=0)] = 1_048_576

    @field_validator("dsn")
    @classmethod
    def _dsn_scheme(cls, value: str) -> str:
        if value and not value.startswith(("chdb://", "http://", "https://")):
            raise ValueError("must start with chdb://, http:// or https://")
        return value


class KafkaSettings(Section):
    """The Kafka source: one consumer group over several topics, each with its format."""

    bootstrap_servers: list[str] = Field(default_factory=lambda: ["127.0.0.1:9092"])
    group_id: str = "gatewatch"
    client_id: str = "gatewatch"
    topics: dict[str, str] = Field(
        default_factory=dict, description="topic -> log format (auto, kong, nginx, ...)"
    )
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None
    max_batch_records: Annotated[int, Field(gt=0, le=1_000_000)] = 20_000
    fetch_max_wait_ms: Annotated[int, Field(ge=0, le=60_000)] = 500
    max_partition_fetch_bytes: Annotated[int, Field(ge=65_536, le=256 * 1024 * 1024)] = Field(
        default=4 * 1024 * 1024,
        description="bytes fetched per partition per request; larger batches mean fewer, "
        "cheaper inserts (aiokafka's 1 MiB default gave ~3k-record batches)",
    )
    session_timeout_ms: Annotated[int, Field(ge=1000)] = 45_000
    max_poll_interval_ms: Annotated[int, Field(ge=1000)] = 300_000
    dead_letter_topic: str | None = Field(
        default=None, description="also produce dead-lettered records to this topic"
    )

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and (
            self.sasl_mechanism is None or not self.sasl_username or self.sasl_password is None
        ):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism, "
                "sasl_username and sasl_password"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (mutual TLS)")
        return self


class MetricsSettings(Section):
    """The Prometheus /metrics endpoint of long-running commands."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65_535)] = 9108


class DetectorConfig(NamedTuple):
    """One configured detector: its registry type and validated params."""

    type: str
    params: Any


class DetectionSettings(Section):
    """The streaming detectors: event-time handling and each detector's params.

    ``detectors`` maps a name to its table; the table's optional ``type`` picks the
    detector class (default: the name), the rest are that detector's params, validated
    here so a bad threshold stops start-up with its key. Registered detectors that are
    not configured run with their defaults; ``enabled = false`` turns one off.
    """

    enabled: bool = True
    allowed_lateness_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=1.0,
        description="how long to wait for out-of-order events (event time); also the "
        "least delay from an event to its finding: raise it when gateways' clocks or "
        "partitions disagree by more",
    )
    evidence_limit: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=200, description="request ids kept per finding when streaming (detect keeps all)"
    )
    checkpoint_every_s: Annotated[float, Field(ge=0)] = Field(
        default=60.0,
        description="seconds between checkpoints of learnt baselines when consuming Kafka "
        "(also taken at shutdown); 0: never, a restart starts them empty",
    )
    detectors: dict[str, Any] = Field(default_factory=dict)

    @field_validator("detectors", mode="before")
    @classmethod
    def _detector_params(cls, value: Any) -> dict[str, Any]:
        from detectors.registry import DETECTORS  # noqa: PLC0415 - settings load first

        if not isinstance(value, dict):
            raise ValueError("expected a table of detector tables")
        validated: dict[str, Any] = {}
        for name, table in value.items():
            if isinstance(table, DetectorConfig):
                validated[name] = table
                continue
            if not isinstance(table, dict):
                raise ValueError(f"{name}: expected a table")
            params = dict(table)
            kind = params.pop("type", name)
            detector = DETECTORS.get(kind)
            if detector is None:
                known = ", ".join(sorted(DETECTORS))
                raise ValueError(f"{name}: unknown detector type {kind!r} (known: {known})")
            try:
                validated[name] = DetectorConfig(kind, detector.Params(**params))
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(part) for part in first["loc"])
                raise ValueError(f"{name}.{where}: {first['msg']}") from None
        return validated

    @field_serializer("detectors")
    def _show_detectors(self, detectors: dict[str, Any]) -> dict[str, Any]:
        return {
            name: {"type": config.type, **config.params.model_dump(mode="json")}
            for name, config in detectors.items()
        }


class AlertChannel(Section):
    """Where alerts go: ``console``, ``file:PATH`` (JSON lines; relative to data_dir),
    or any Apprise URL (Slack, Teams, Mattermost, Discord, email, webhooks, PagerDuty,
    Opsgenie). URLs carry tokens: they are secrets, never logged or shown."""

    url: SecretStr
    rate_per_minute: Annotated[float, Field(gt=0, le=6000)] = Field(
        default=20.0, description="past this, alerts to the channel are sent as one digest"
    )


class AlertRoute(Section):
    """Which alerts go to which channels: every route that matches sends (empty
    ``kinds`` / ``routes``: any)."""

    channels: list[str] = Field(min_length=1)
    min_severity: Severity = Severity.LOW
    kinds: list[str] = Field(default_factory=list, description="finding kinds in the alert")
    routes: list[str] = Field(default_factory=list, description="API route templates")

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = sorted(set(kinds) - KINDS)
        if unknown:
            raise ValueError(f"unknown finding kinds {unknown} (known: {', '.join(sorted(KINDS))})")
        return kinds


def _default_channels() -> dict[str, AlertChannel]:
    return {
        "console": AlertChannel(url=SecretStr("console")),
        "file": AlertChannel(url=SecretStr("file:alerts.jsonl")),
    }


class AlertSettings(AlertPolicy):
    """From findings to alerts (the policy: risk, grouping, cooldown) and where they go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    dashboard_url: str = Field(
        default="http://127.0.0.1:8080", description="links in messages point here"
    )
    channels: dict[str, AlertChannel] = Field(default_factory=_default_channels)
    routes: list[AlertRoute] = Field(
        default_factory=lambda: [AlertRoute(channels=["console", "file"])]
    )
    max_attempts: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=12, description="delivery attempts before an alert is parked as dead"
    )
    backoff_base_s: Annotated[float, Field(gt=0)] = 1.0
    backoff_max_s: Annotated[float, Field(gt=0)] = 300.0
    digest_after: Annotated[int, Field(ge=1)] = Field(
        default=5, description="burst per channel before alerts are combined into a digest"
    )

    @model_validator(mode="after")
    def _routes_name_channels(self) -> AlertSettings:
        for i, route in enumerate(self.routes):
            unknown = [name for name in route.channels if name not in self.channels]
            if unknown:
                known = ", ".join(sorted(self.channels)) or "none"
                raise ValueError(f"routes[{i}]: unknown channels {unknown} (known: {known})")
        return self


class OidcSettings(Section):
    """Single sign-on with an OpenID Connect provider (Authorization Code flow with
    PKCE), found by its issuer URL; on when ``issuer`` is set. The role comes from the
    ID token: the highest one ``role_map`` gives any value of ``role_claim``, else
    ``default_role`` ("none" refuses the login)."""

    issuer: str | None = Field(
        default=None, description="https URL (http only for a loopback host, in tests)"
    )
    client_id: str = Field(default="", validate_default=True)
    client_secret: SecretStr | None = Field(default=None, description="unset: a public client")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    role_claim: str = "groups"
    role_map: dict[str, Literal["viewer", "analyst", "admin"]] = Field(
        default_factory=dict, description='claim value -> role, e.g. {"soc-admins": "admin"}'
    )
    default_role: Literal["none", "viewer"] = "none"
    username_claim: str = Field(
        default="preferred_username", description="falls back to email, then sub"
    )
    redirect_uri: str | None = Field(
        default=None,
        description="the callback registered with the provider; default: this server's "
        "/login/oidc/callback as the browser reached it",
    )

    @field_validator("issuer", "redirect_uri")
    @classmethod
    def _secure_url(cls, value: str | None) -> str | None:
        if value is not None and not secure_url(value):
            raise ValueError(
                "must be an https URL without query or fragment (http only for "
                "localhost, 127.0.0.1 or ::1)"
            )
        return value

    @field_validator("client_id")
    @classmethod
    def _client_id_with_issuer(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("issuer") and not value.strip():
            raise ValueError("is required when issuer is set")
        return value

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("must include 'openid'")
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)


def secure_url(url: str) -> bool:
    """Whether ``url`` is https, or http to a loopback host; with a host and no query
    or fragment.

    >>> secure_url("https://id.example.com/realms/soc"), secure_url("http://127.0.0.1:8000")
    (True, True)
    >>> secure_url("http://id.example.com"), secure_url("https://id.example.com/?a=1")
    (False, False)
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.query or parts.fragment:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and _loopback(host))


class DashboardSettings(Section):
    """The SOC dashboard and JSON API (``gatewatch serve``; ``make demo``)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65_535)] = 8080
    tls_cert: Path | None = Field(default=None, description="PEM certificate: serve HTTPS")
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert")
    behind_tls_proxy: bool = Field(
        default=False,
        description="a TLS-terminating proxy fronts the dashboard: cookies Secure, HSTS on",
    )
    insecure_http: bool = Field(
        default=False,
        description="allow plain HTTP on a non-loopback address: only inside a container "
        "whose port is published on the host's 127.0.0.1",
    )
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = Field(
        default=8.0, description="a login lasts this long"
    )
    public_metrics: bool = Field(
        default=True, description="serve /metrics without authentication (for Prometheus)"
    )
    max_request_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    login_max_failures: Annotated[int, Field(ge=1, le=100)] = 5
    login_lockout_s: Annotated[float, Field(gt=0)] = 900.0
    sql_max_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    sql_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    oidc: OidcSettings = OidcSettings()

    @model_validator(mode="after")
    def _tls_pair(self) -> DashboardSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        if not (self.https or self.insecure_http or _loopback(self.host)):
            raise ValueError(
                f"host {self.host!r} is reachable from the network: serve HTTPS (tls_cert "
                "and tls_key) or set behind_tls_proxy = true; plain HTTP is for 127.0.0.1"
            )
        return self

    @property
    def https(self) -> bool:
        """Browsers reach the dashboard over HTTPS (its own TLS or a proxy's)."""
        return self.tls_cert is not None or self.behind_tls_proxy


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(BaseSettings):
    """Everything configurable, validated at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path(".gatewatch")
    ingest: IngestSettings = IngestSettings()
    storage: StorageSettings = StorageSettings()
    kafka: KafkaSettings = KafkaSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    detection: DetectionSettings = DetectionSettings()
    alerts: AlertSettings = AlertSettings()
    dashboard: DashboardSettings = DashboardSettings()

    @property
    def storage_dsn(self) -> str:
        """The configured DSN, or the embedded chDB store under ``data_dir``."""
        return self.storage.dsn or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init arguments (see ``load_settings``); the
        # environment overrides them, so a deployment can change one key without
        # editing the file.
        return (env_settings, init_settings)


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; raise ``ConfigError`` naming file, key and reason.

    ``path`` defaults to ``$GATEWATCH_CONFIG``; without either, the embedded defaults
    apply (plus environment overrides).
    """
    env_path = os.environ.get(CONFIG_ENV)
    chosen = Path(path) if path is not None else (Path(env_path) if env_path else None)
    label = str(chosen) if chosen is not None else "settings"
    values: dict[str, Any] = {}
    if chosen is not None:
        if not chosen.is_file():
            raise ConfigError(label, [("", "file not found")])
        try:
            with chosen.open("rb") as fh:
                values = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(label, [("", f"not valid TOML: {exc}")]) from None
    _merge(values, overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(label, _problems(exc)) from None


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Deep-merge ``overrides`` (e.g. from command-line flags) into ``base``."""
    for key, value in overrides.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value)
        else:
            base[key] = value


def _secret_key(key: str) -> bool:
    return any(word in key for word in ("password", "salt", "secret", "token", "url"))


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in error and error["type"] != "missing" and not _secret_key(key):
            shown = error["input"]
            if not isinstance(shown, dict | list):
                message = f"{message} (got {shown!r})"
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        problems.append((key, message))
    return problems
