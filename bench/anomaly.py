"""The learned-baseline detector on simulated API traffic: what it catches, what it costs.

``python -m bench.anomaly [--duration 3600] [--seed 7] [--reuse] [--cost-only [--parts]
[--crowd 10 --crowd-seconds 600]]``

One run of the simulator (benign crowd, its traps, and every attack episode) goes
through the ``anomaly_model`` detector alone, as ``gatewatch detect`` parses it, and
the figures are:

- per attack kind: episodes flagged by the model path (an anomaly finding holds one of
  the episode's requests, or names its address, user or key as the entity);
- false anomaly findings per 100k benign events (findings with no attack request in
  their evidence and no attacker as their entity; target <= 2);
- amortised cost per event: CPU of the engine with the detector, less the engine
  alone, over the events, each the fastest of three runs (target <= 2 us);
- bytes per tracked entity (tracemalloc of the detector over its tracked entities).

``--cost-only`` gives the cost at four rates: the simulator's (about 110 events/s);
ten times the clients, each at its usual pace (``simulate --crowd 10``: a busier API,
about 1,000 events/s; ``--crowd 40 --crowd-seconds 300`` gives about 4,200 events/s);
and the same hour with every client 10x and 50x faster (event times compressed: a
stress case, as nearly every client then sends like a scraper). Each rate also
prints its floor: the time to copy out of every request a reference to each field the
features read, the least that reading them out of Python Event objects costs
(``bench.anomaly_parts.print_floor``).

Needs nothing from ../shared (the simulator writes its own labels).
"""

from __future__ import annotations

import argparse
import collections
import gc
import pickle
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import orjson

from bench.anomaly_parts import print_floor, print_parts
from bench.common import OUT, canonical_events, feed, figure
from detectors.anomaly.detector import AnomalyModel, AnomalyModelParams
from detectors.engine import DetectionEngine
from gatewatch.event import Event
from gatewatch.finding import Finding

START = "2026-03-02T09:00:00Z"
MODEL_KINDS = ("scraping", "data_exfiltration", "oversized_payload")
REPEAT = 3  # runs per cost figure (the fastest counts)
# A busier API for the cost figures: ten times the clients, each at its own pace (about
# 1,000 events/s), for 10 minutes (~630k events).
CROWD, CROWD_SECONDS = 10, 600


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.anomaly", description=__doc__)
    parser.add_argument("--duration", type=int, default=3600, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="reuse an earlier simulation")
    parser.add_argument("--out", type=Path, default=OUT / "anomaly")
    parser.add_argument(
        "--cost-only",
        action="store_true",
        help="only the cost figures, at the simulator's rate and 10x and 50x denser",
    )
    parser.add_argument(
        "--parts", action="store_true", help="with --cost-only: where the time goes, per part"
    )
    parser.add_argument(
        "--crowd",
        type=int,
        default=CROWD,
        help="with --cost-only: the busier API's clients, times the simulator's",
    )
    parser.add_argument(
        "--crowd-seconds", type=int, default=CROWD_SECONDS, help="... for this many seconds"
    )
    args = parser.parse_args(argv)
    work: Path = args.out
    events = _simulated(work, args, duration=args.duration)
    if args.cost_only:
        _cost(events, "the simulator's rate", parts=args.parts)
        factor, seconds = args.crowd, args.crowd_seconds
        name = f"-crowd{factor}" if (factor, seconds) == (CROWD, CROWD_SECONDS) else ""
        crowd = work.parent / f"{work.name}{name or f'-crowd{factor}-{seconds}'}"
        what = f"{factor}x the clients (--crowd {factor})"
        _cost(_simulated(crowd, args, duration=seconds, crowd=factor), what, parts=args.parts)
        for factor in (10, 50):
            what = f"every client {factor}x faster"
            _cost(_denser(events, factor), what, parts=args.parts)
        return
    labels = _labels(work)
    attacks = orjson.loads((work / "attacks.json").read_bytes())
    print(f"{len(events):,} events, {len(labels):,} attack requests, {len(attacks)} episodes")

    findings: list[Finding] = []
    detector = AnomalyModel(AnomalyModelParams())
    engine = DetectionEngine([detector], findings.append, evidence_limit=None)
    with_model = feed(engine, events)
    latest = {f.id: f for f in findings}  # an episode's last version holds all of it
    _coverage(latest.values(), attacks, labels, events)
    _false_positives(latest.values(), labels, events)
    cost, _ = _detector_cost(events)
    figure("amortised cost of the anomaly_model detector", cost, "us/event", "(target <= 2)")
    figure("events per CPU-second, engine + anomaly_model", len(events) / with_model.cpu, "/s")
    counters = detector.counters()
    checkpoint = len(zlib.compress(pickle.dumps(detector.snapshot()), 3))
    figure(
        "checkpoint size (compressed pickle)",
        checkpoint / 1024,
        "KiB",
        f"{checkpoint / max(detector.tracked(), 1):.0f} bytes per tracked entity",
    )
    judged, flagged = counters["windows_judged"], counters["windows_flagged"]
    figure("windows judged", judged, "windows", f"flagged {flagged}")
    _memory(events)


def _simulated(
    work: Path, args: argparse.Namespace, *, duration: int, crowd: int = 1
) -> list[Event]:
    """The simulator's labelled run in ``work`` (made unless ``--reuse`` finds it)."""
    if not (args.reuse and (work / "canonical.jsonl").is_file()):
        subprocess.run(
            [
                sys.executable, "-m", "gatewatch", "simulate", "--attacks", "all",
                "--duration", str(duration), "--seed", str(args.seed), "--start", START,
                "--crowd", str(crowd), "--labels", str(work),
            ],
            check=True,
        )  # fmt: skip
    return list(canonical_events(work / "canonical.jsonl"))


def _cost(events: list[Event], what: str, *, parts: bool = False) -> None:
    rate = len(events) / max(events[-1].ts - events[0].ts, 1.0)
    cost, detector = _detector_cost(events)
    judged = detector.counters()["windows_judged"]
    figure(
        f"anomaly_model cost, {what}", cost, "us/event", f"{rate:,.0f} events/s; {judged:,} windows"
    )
    if parts:
        print_parts(events, cost)
    print_floor(events, REPEAT)


def _detector_cost(events: list[Event], runs: int = REPEAT) -> tuple[float, AnomalyModel]:
    """Microseconds of CPU per event the detector adds to the engine: the fastest of
    ``runs`` runs with it, less the fastest without. One run of each varied by +-15%
    on a shared VM, more than a change worth measuring; the fastest run is the one the
    rest of the machine disturbed least."""
    with_model, alone = [], []
    for _ in range(runs):
        alone.append(feed(DetectionEngine([], lambda f: None, evidence_limit=None), events).cpu)
        detector = AnomalyModel(AnomalyModelParams())  # the last run's is returned
        engine = DetectionEngine([detector], lambda f: None, evidence_limit=None)
        with_model.append(feed(engine, events).cpu)
    return (min(with_model) - min(alone)) / len(events) * 1e6, detector


def _denser(events: list[Event], factor: float) -> list[Event]:
    """The same requests arriving ``factor`` times faster."""
    start = events[0].ts
    return [e._replace(ts=start + (e.ts - start) / factor) for e in events]


def _labels(work: Path) -> dict[str, str]:
    return {
        x["request_id"]: x["attack_id"]
        for x in map(orjson.loads, (work / "labels.jsonl").read_bytes().splitlines())
        if x
    }


def _attackers(events: list[Event], labels: dict[str, str]) -> dict[str, set[str]]:
    """attack id -> the addresses, users and keys its requests carried."""
    who: dict[str, set[str]] = collections.defaultdict(set)
    for event in events:
        attack = labels.get(event.request_id)
        if attack is not None:
            who[attack].update(x for x in (event.client_ip, event.user, event.api_key) if x)
    return who


def _coverage(
    findings: Any, attacks: list[dict[str, Any]], labels: dict[str, str], events: list[Event]
) -> None:
    who = _attackers(events, labels)
    caught: set[str] = set()
    for finding in findings:
        for rid in finding.evidence:
            attack = labels.get(rid)
            if attack is not None:
                caught.add(attack)
        for attack, entities in who.items():
            if finding.entity in entities:
                caught.add(attack)
    per_kind: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for episode in attacks:
        tally = per_kind[episode["kind"]]
        tally[1] += 1
        tally[0] += episode["attack_id"] in caught
    print("episodes flagged by the model path, per attack kind:")
    for kind, (hit, total) in sorted(per_kind.items()):
        target = "  <- must be flagged" if kind in MODEL_KINDS else ""
        print(f"   {kind:28} {hit}/{total}{target}")


def _false_positives(findings: Any, labels: dict[str, str], events: list[Event]) -> None:
    attacker_entities = set().union(*_attackers(events, labels).values())
    benign = sum(1 for e in events if e.request_id not in labels)
    false = [
        f
        for f in findings
        if f.entity not in attacker_entities and not any(r in labels for r in f.evidence)
    ]
    figure(
        "false anomaly findings",
        len(false) * 1e5 / max(benign, 1),
        "per 100k",
        f"{len(false)} over {benign:,} benign events (target <= 2)",
    )
    in_evidence = {r for f in findings for r in f.evidence if r not in labels}
    figure(
        "benign requests in anomaly evidence",
        len(in_evidence) * 1e5 / max(benign, 1),
        "per 100k",
        f"{len(in_evidence):,} of {benign:,}",
    )
    for finding in false[:10]:
        print(f"   false: {finding.entity_type} {finding.summary[:150]}")


def _memory(events: list[Event]) -> None:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    detector = AnomalyModel(AnomalyModelParams())
    engine = DetectionEngine([detector], lambda f: None, evidence_limit=None)
    for event in events:
        engine.process(event)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    tracked = max(detector.tracked(), 1)
    figure(
        "memory per tracked entity (models included)",
        used / tracked,
        "bytes",
        f"{used / 2**20:.1f} MiB over {tracked:,} entities",
    )


if __name__ == "__main__":
    main()
