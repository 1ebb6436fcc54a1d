"""Alerts: how many per attack episode, and how fast they arrive.

Targets (issue 5): one alert per attack episode, updated rather than repeated; from the
triggering event to arrival at the receiver p99 <= 2 s with the pipeline at 20k
events/s.

One hour of simulated traffic with every attack kind and the benign traps is parsed
once; then the events are fed to the detectors and alerting at 20k events/s (paced in
wall time), alerts delivered through Apprise's ``json://`` to an HTTP receiver on
127.0.0.1. An alert counts for an episode when the episode's requests are in its
findings' evidence.

    python -m bench.alerts [--hours 1] [--rate 20000]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson

from alerts.messages import render
from alerts.model import Notice, NoticeReason, rank
from alerts.service import Alerting
from bench.common import figure
from gatewatch.event import Event
from gatewatch.finding import Finding, Severity
from gatewatch.settings import load_settings
from gatewatch.wiring import build_engine, build_pipeline, findings_to
from ingest.simulator.attacks import build_episodes, parse_kinds
from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from ingest.simulator.traps import build_traps
from ingest.sources.base import Record


class _Receiver(BaseHTTPRequestHandler):
    arrivals: ClassVar[list[tuple[float, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Receiver.arrivals.append((time.monotonic(), orjson.loads(body).get("title", "")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


def _traffic(hours: float) -> tuple[list[Event], dict[str, str]]:
    config = SimulationConfig(seed=21, start_ts=1_710_230_400.0, duration_s=hours * 3600)
    episodes = build_episodes(config, parse_kinds("all"))
    settings = load_settings(None, data_dir=tempfile.mkdtemp(), ingest={"fingerprint_salt": "b"})
    pipeline = build_pipeline(settings, "canonical", for_storage=False)
    pipeline.normaliser.min_ts = 0
    render = RENDERERS["canonical"]
    events: list[Event] = []
    labels: dict[str, str] = {}
    for i, request in enumerate(generate(config, [*build_traps(config), *episodes])):
        line = render(request)
        event = pipeline.process(Record("bench", i, line, len(line)))
        if type(event) is Event:
            events.append(event)
            if request.attack_id:
                labels[event.request_id] = request.attack_id
    return events, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=20_000.0, help="events per second fed")
    args = parser.parse_args([] if __name__ != "__main__" else None)
    events, labels = _traffic(args.hours)
    print(f"{len(events):,} events, {len(set(labels.values()))} attack episodes")

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    home = Path(tempfile.mkdtemp())
    settings = load_settings(
        None,
        data_dir=str(home),
        alerts={
            "channels": {"hook": {"url": f"json://127.0.0.1:{server.server_port}/alerts",
                                  "rate_per_minute": 6000}},
            "routes": [{"channels": ["hook"]}],
        },
    )  # fmt: skip
    submitted: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
    notices: list[Notice] = []
    fed_at = [0.0]  # wall time the event being processed was fed

    def on_notice(notice: Notice) -> None:
        notices.append(notice)
        if notice.reason is not NoticeReason.CLOSED:
            title, _ = render(notice.alert, notice.reason, "text")
            submitted[title].append(fed_at[0])

    alerting = Alerting(settings.alerts, data_dir=home, on_notice=on_notice)
    findings: list[Finding] = []
    engine = build_engine(settings, findings_to(findings.append, alerting.on_finding))
    alerting.start()
    interval = 1.0 / args.rate
    started = time.monotonic()
    for i, event in enumerate(events):
        due = started + i * interval
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        fed_at[0] = time.monotonic()
        engine.process(event)
    engine.finish()
    alerting.finish()
    achieved = len(events) / (time.monotonic() - started)
    alerting.stop(timeout_s=30)
    server.shutdown()

    latencies = []
    for arrived, title in _Receiver.arrivals:
        if submitted[title]:
            latencies.append(arrived - submitted[title].popleft())
    per_episode: dict[str, set[str]] = collections.defaultdict(set)
    shared: set[str] = set()  # the "all traffic" alert: a global surge spans episodes
    for notice in notices:
        alert = notice.alert
        for finding in alert.findings.values():
            for rid in finding.evidence:
                if rid in labels:
                    per_episode[labels[rid]].add(alert.id)
                    if alert.actor == "global":
                        shared.add(alert.id)
    worst: dict[str, Severity] = {}
    for finding in findings:
        for rid in finding.evidence:
            episode = labels.get(rid)
            if episode and (episode not in worst or rank(finding.severity) > rank(worst[episode])):
                worst[episode] = finding.severity
    alerted = sorted(per_episode)
    counts = [len(per_episode[e] - shared) for e in alerted]
    quiet = sorted(set(labels.values()) - set(per_episode))
    reasons = collections.Counter(n.reason.value for n in notices)
    figure("feed rate achieved", achieved, "events/s", f"target {args.rate:,.0f}")
    figure("alerts per alerted attack episode", statistics.mean(counts), "alerts",
           f"median {statistics.median(counts)}, max {max(counts)} over {len(counts)} "
           f"episodes; {len(shared)} 'all traffic' alert(s) also span episodes")  # fmt: skip
    print("  " + ", ".join(f"{e} {n}" for e, n in zip(alerted, counts, strict=True)))
    figure("attack episodes without an alert", len(quiet), "episodes",
           "below the policy: no high or critical finding, risk under the threshold")  # fmt: skip
    print("  " + ", ".join(f"{e} (worst {worst.get(e, 'none')})" for e in quiet))
    by_reason = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    figure("notices", sum(reasons.values()), "notices", by_reason)
    if latencies:
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        figure("event to receiver p50", statistics.median(latencies) * 1000, "ms",
               f"{len(latencies)} deliveries")  # fmt: skip
        figure("event to receiver p99", p99 * 1000, "ms")


if __name__ == "__main__":
    main()
