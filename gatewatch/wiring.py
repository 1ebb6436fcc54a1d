"""Builds the running parts from Settings: the store, the normaliser, the pipeline.

The only place that knows how settings map onto constructors, so the CLI, the demo and
tests assemble the same thing.
"""

from __future__ import annotations

import time
from typing import Any

from alerts.model import Alert
from alerts.service import Alerting
from alerts.suppression import Suppression, Suppressions
from detectors.base import Detector, FindingSink
from detectors.engine import DetectionEngine
from detectors.registry import DETECTORS
from gatewatch.finding import Finding
from gatewatch.pipeline import Pipeline
from gatewatch.settings import DetectorConfig, Settings
from gatewatch.store.client import Store
from gatewatch.store.queries import active_suppressions, open_alerts
from gatewatch.store.writer import BatchWriter
from ingest.normalise.client_ip import ClientIpResolver
from ingest.normalise.normaliser import Normaliser
from ingest.normalise.routes import RouteTemplater
from ingest.normalise.secrets import Fingerprinter, SecretMasker, load_or_create_salt
from ingest.parsers import build_parser


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    storage = settings.storage
    store = Store(
        settings.storage_dsn,
        database=storage.database,
        username=storage.username,
        password=storage.password.get_secret_value(),
        retention_days=storage.retention_days,
        dead_letter_retention_days=storage.dead_letter_retention_days,
    )
    if migrate:
        store.migrate()
    return store


def ingest_salt(settings: Settings) -> bytes:
    """The configured salt, or the one generated and kept in ``data_dir``."""
    salt = settings.ingest.fingerprint_salt
    if salt is not None:
        return salt.get_secret_value().encode()
    return load_or_create_salt(settings.data_dir)


def build_masker(settings: Settings) -> SecretMasker:
    ingest = settings.ingest
    return SecretMasker(
        Fingerprinter(ingest_salt(settings)),
        ingest.sensitive_query_params,
        ingest.sensitive_headers,
    )


def build_routes(settings: Settings) -> RouteTemplater:
    routes = settings.ingest.routes
    if routes.openapi is not None:
        return RouteTemplater.from_openapi_file(
            routes.openapi,
            max_templates=routes.max_templates,
            collapse_after=routes.collapse_after,
            cache_size=routes.cache_size,
        )
    return RouteTemplater(
        max_templates=routes.max_templates,
        collapse_after=routes.collapse_after,
        cache_size=routes.cache_size,
    )


def build_pipeline(
    settings: Settings,
    format_name: str | None = None,
    *,
    masker: SecretMasker | None = None,
    for_storage: bool = True,
) -> Pipeline:
    """A pipeline for one input format (default: the configured one).

    With ``for_storage``, events older than the retention period are dead-lettered
    rather than stored: the table's TTL would delete them at once, silently.
    """
    ingest = settings.ingest
    name = format_name or ingest.format
    masker = masker or build_masker(settings)
    min_ts = ingest.min_ts
    if for_storage:
        min_ts = max(min_ts, time.time() - settings.storage.retention_days * 86_400)
    normaliser = Normaliser(
        resolver=ClientIpResolver(ingest.trusted_proxies),
        routes=build_routes(settings),
        masker=masker,
        max_body_bytes=ingest.max_body_bytes,
        min_ts=min_ts,
        max_future_skew_s=ingest.max_future_skew_s,
    )
    return Pipeline(
        parser=build_parser(name, ingest),
        normaliser=normaliser,
        masker=masker,
        format_name=name,
        max_line_bytes=ingest.max_line_bytes,
        dead_letter_max_bytes=settings.storage.dead_letter_max_bytes,
    )


def build_detectors(settings: Settings) -> list[Detector[Any]]:
    """The enabled detectors: every configured one, plus each registered type that the
    config does not mention, with its defaults."""
    configured: dict[str, DetectorConfig] = settings.detection.detectors
    chosen = dict(configured)
    mentioned = {config.type for config in configured.values()}
    for name, detector in DETECTORS.items():
        if name not in mentioned and name not in chosen:
            chosen[name] = DetectorConfig(name, detector.Params())
    return [
        DETECTORS[config.type](config.params, label=name)
        for name, config in sorted(chosen.items())
        if config.params.enabled
    ]


def detector_params(settings: Settings) -> dict[str, Any]:
    """Params of every configured detector by label, for ``DetectionEngine.reconfigure``
    (a config reload changes thresholds; adding or removing detectors needs a restart)."""
    return {name: config.params for name, config in settings.detection.detectors.items()}


def build_engine(
    settings: Settings, sink: FindingSink, *, offline: bool = False
) -> DetectionEngine:
    """The detection engine over the enabled detectors.

    ``offline`` (``gatewatch detect``) keeps every contributing request id as evidence;
    streaming keeps ``detection.evidence_limit`` per finding.
    """
    detection = settings.detection
    return DetectionEngine(
        build_detectors(settings) if detection.enabled else [],
        sink,
        allowed_lateness_s=detection.allowed_lateness_s,
        evidence_limit=None if offline else detection.evidence_limit,
    )


def load_suppressions(store: Store) -> list[Suppression]:
    """The active suppression rules stored by ``gatewatch alerts suppress``."""
    return [Suppression.from_row(row) for row in active_suppressions(store)]


def build_alerting(settings: Settings, store: Store, writer: BatchWriter) -> Alerting | None:
    """Alerting over the findings, its rows stored through ``writer``; None when
    ``alerts.enabled`` is off. Call ``start`` before the first finding."""
    if not settings.alerts.enabled:
        return None
    alerting = Alerting(
        settings.alerts,
        data_dir=settings.data_dir,
        rows=writer.add_row,
        suppressions=Suppressions(load_suppressions(store)),
    )
    # Alerts open when the process last stopped carry on: no repeat after a restart.
    alerting.manager.resume([Alert.restored(row, found) for row, found in open_alerts(store)])
    return alerting


def findings_to(*sinks: FindingSink | None) -> FindingSink:
    """One finding sink feeding each of ``sinks`` (None ones left out)."""
    chosen = [sink for sink in sinks if sink is not None]
    if len(chosen) == 1:
        return chosen[0]

    def tee(finding: Finding) -> None:
        for sink in chosen:
            sink(finding)

    return tee
