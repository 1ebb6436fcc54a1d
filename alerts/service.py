"""Alerting as one part of a pipeline: findings in; alerts grouped, routed, rendered
for each channel and handed to the dispatcher; alert versions and every delivery
attempt stored beside the findings.

Detection calls ``on_finding`` on its own thread and never waits for the network: the
dispatcher persists each message to its outbox and delivers on a thread of its own.
Rows for ClickHouse go through the pipeline's ``BatchWriter`` (``add_row``), so one
thread talks to the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from alerts.channels import Channel, build_channel
from alerts.delivery import DeliveryAttempt, Dispatcher
from alerts.grouping import AlertManager
from alerts.messages import render
from alerts.model import Alert, Notice, NoticeReason
from alerts.outbox import Outbox
from alerts.suppression import Suppressions
from gatewatch.finding import Finding, Severity
from gatewatch.settings import AlertChannel, AlertRoute, AlertSettings

log = logging.getLogger(__name__)

_RANK = {severity: rank for rank, severity in enumerate(Severity)}
RowSink = Callable[[str, dict[str, Any]], None]
_STORE_EVERY_S = 60.0


def route_channels(routes: list[AlertRoute], alert: Alert) -> list[str]:
    """The channels of every route the alert matches, in configuration order."""
    chosen: list[str] = []
    for route in routes:
        if _RANK[alert.severity] < _RANK[route.min_severity]:
            continue
        if route.kinds and not set(route.kinds) & set(alert.kinds):
            continue
        if route.routes and not set(route.routes) & alert.routes:
            continue
        chosen.extend(name for name in route.channels if name not in chosen)
    return chosen


def build_channels(settings: AlertSettings, data_dir: Path) -> dict[str, Channel]:
    """The configured channels; a relative ``file:`` path lives in ``data_dir``."""
    channels: dict[str, Channel] = {}
    for name, channel in settings.channels.items():
        url = channel.url.get_secret_value()
        if url.startswith("file:") and not url.startswith("file:/"):
            url = f"file:{data_dir / url.removeprefix('file:')}"
        channels[name] = build_channel(name, url)
    return channels


def _rates(settings: AlertSettings, channels: Mapping[str, Channel]) -> dict[str, float]:
    default = AlertChannel.model_fields["rate_per_minute"].default
    return {
        name: settings.channels[name].rate_per_minute if name in settings.channels else default
        for name in channels
    }


class Alerting:
    """Findings to delivered alerts. ``start`` before the first finding, ``stop`` at
    shutdown (after ``finish``, which closes the open alerts)."""

    def __init__(
        self,
        settings: AlertSettings,
        *,
        data_dir: Path,
        rows: RowSink | None = None,
        suppressions: Suppressions | None = None,
        channels: Mapping[str, Channel] | None = None,
        on_notice: Callable[[Notice], None] | None = None,
    ) -> None:
        self.settings = settings
        self._rows = rows
        self._on_notice = on_notice
        self.suppressions = suppressions or Suppressions()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.channels = (
            dict(channels) if channels is not None else build_channels(settings, data_dir)
        )
        self.outbox = Outbox(data_dir / "alerts-outbox.sqlite")
        self.dispatcher = Dispatcher(
            self.channels,
            self.outbox,
            audit=self._audit,
            max_attempts=settings.max_attempts,
            backoff_base_s=settings.backoff_base_s,
            backoff_max_s=settings.backoff_max_s,
            rate_per_minute=_rates(settings, self.channels),
            digest_after=settings.digest_after,
        )
        self.manager = AlertManager(
            settings, self._notify, suppressions=self.suppressions, on_change=self._changed
        )
        self._stored_ts: dict[str, float] = {}  # alert id -> event time of its stored row

    def start(self) -> None:
        self.dispatcher.start()

    def on_finding(self, finding: Finding) -> None:
        self.manager.advance(finding.detected_ts)
        self.manager.on_finding(finding)

    def finish(self) -> None:
        """End of input: close the open alerts (their last notices are delivered)."""
        self.manager.finish()

    def checkpoint(self) -> None:
        """Store the latest version of every open alert (at shutdown: the next start
        carries on from it). Call it from the detection thread, or once that stopped."""
        if self._rows is not None:
            for alert in self.manager.open_alerts():
                self._rows("alerts", alert.to_row())

    def stop(self, timeout_s: float = 10.0) -> None:
        """Deliver what is due within ``timeout_s``; the rest waits in the outbox."""
        self.dispatcher.flush(timeout_s)
        self.dispatcher.stop(timeout_s)
        self.outbox.close()

    def _notify(self, notice: Notice) -> None:
        alert = notice.alert
        if self._on_notice is not None:
            self._on_notice(notice)
        if self._rows is not None:
            self._rows("alerts", alert.to_row())
            self._stored_ts[alert.id] = alert.updated_ts
        if notice.reason is NoticeReason.CLOSED:
            self._stored_ts.pop(alert.id, None)
            return  # stored; nobody needs waking for an attack that stopped
        for name in route_channels(self.settings.routes, alert):
            channel = self.channels[name]
            title, body = render(
                alert, notice.reason, channel.format, dashboard_url=self.settings.dashboard_url
            )
            self.dispatcher.submit(alert.id, alert.version, name, title, body)

    def _changed(self, alert: Alert) -> None:
        """A silent update: stored at most once per ``_STORE_EVERY_S`` of event time, so
        the dashboard's counts stay current without a row per finding version."""
        if self._rows is None:
            return
        if alert.updated_ts - self._stored_ts.get(alert.id, float("-inf")) >= _STORE_EVERY_S:
            self._rows("alerts", alert.to_row())
            self._stored_ts[alert.id] = alert.updated_ts

    def _audit(self, attempt: DeliveryAttempt) -> None:
        if not attempt.ok:
            log.warning(
                "alert %s to %s failed (attempt %d): %s",
                attempt.alert_id,
                attempt.channel,
                attempt.attempt,
                attempt.error,
            )
        if self._rows is not None:
            self._rows(
                "alert_deliveries",
                {
                    "ts": attempt.ts,
                    "delivery_id": attempt.delivery_id,
                    "alert_id": attempt.alert_id,
                    "version": attempt.version,
                    "channel": attempt.channel,
                    "attempt": attempt.attempt,
                    "ok": attempt.ok,
                    "error": attempt.error,
                    "latency_ms": attempt.latency_ms,
                    "digest": attempt.digest,
                },
            )
