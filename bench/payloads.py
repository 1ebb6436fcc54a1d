"""The payload stage measured per source, with the Core Rule Set alone as the reference
in the same run (issue 7).

Sections (``--only`` one or several, comma-separated; default all):

1. ``crs``: the OWASP CRS regression cases of paranoia level 1: what the prefilter loses
   against CRS alone (target 0), the share of the positives CRS alone flags that the
   whole payload detector flags (target >= 99%), the expected rule fired, the
   negatives flagged; per rule file (attack class).
2. ``csic``: CSIC 2010 (dev split) through ``gatewatch detect`` and the shared scorer:
   recall of the anomalous requests and normal requests flagged per 100k; CRS alone on
   the same requests, with all rules and without the policy rules Gatewatch treats as
   context.
3. ``mix``: attack payloads from httpparams, PayloadsAllTheThings and fuzzdb put into
   requests of the simulated API and merged into one hour of benign simulated traffic
   (``bench.payload_sets.PayloadMix``): a few payloads per attacker address, and one
   per address; per class recall and benign requests flagged per 100k, Gatewatch and
   CRS alone (CRS alone on every attack request and a sample of the benign ones).
4. ``traps``: one hour of simulated traffic with the attack episodes and benign traps
   ("men's shoes", "exec chair", "wget tote bag" searches...): benign requests in
   evidence of injection or anomaly findings per 100k (target <= 10 for search).
5. ``throughput``: the payload stage alone on the simulator mix: events per CPU-second
   (target >= 30k), what the prefilter skips, CRS alone per request.

Sections 1 to 3 read ``../shared/data`` and are skipped, saying so, without it; the
scorer (``../shared/eval/score.py``) is used when present. All sections take about 9
minutes on 2 cores (``gatewatch detect`` runs in a child process while CRS alone runs
in this one); the payload stage changes often, so the digest of its sources is printed.

    python -m bench.payloads [--only crs,mix] [--out DIR] [--events 200000]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import math
import os
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from bench.common import OUT, SHARED_DATA, canonical_events, feed, figure, timed
from bench.payload_sets import (
    CSIC,
    PayloadMix,
    attack_payloads,
    benign_values,
    crs_regression,
    crs_skipped,
)
from detectors.crs import API_METHODS, RULES_DIR, CrsEngine, RuleMatch
from detectors.engine import DetectionEngine
from detectors.payload.classify import read
from detectors.payload.detector import PayloadDetector, PayloadParams
from detectors.payload.inspector import PayloadInspector
from detectors.payload.prefilter import Prefilter
from detectors.payload.request import rebuild
from gatewatch.event import Event
from gatewatch.finding import Finding
from gatewatch.settings import load_settings
from gatewatch.wiring import build_pipeline
from ingest.simulator.render import RENDERERS
from ingest.simulator.traffic import SimulationConfig, generate
from ingest.sources.base import Record

SECTIONS = ("crs", "csic", "mix", "traps", "throughput")
SCORER = SHARED_DATA.parent / "eval" / "score.py"
START = "2024-03-12T08:00:00Z"
FLAG_KINDS = frozenset({"injection", "malformed_request", "oversized_payload"})
PAYLOAD_KINDS = FLAG_KINDS | {"anomaly"}
TRAP_KINDS = frozenset({"injection", "anomaly"})
TRAP_PHRASES = ("men's shoes", "select comfort pillow", "exec chair", "wget tote bag")
SEARCH = "/api/v1/search"
RESPONSE_FAMILIES = 950  # 95x: response rules, not loaded (a log has no response body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.payloads", description=__doc__)
    parser.add_argument("--only", default="", help=f"sections: {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=OUT / "payloads", help="working directory")
    parser.add_argument("--events", type=int, default=200_000, help="events for throughput")
    parser.add_argument("--limit", type=int, default=300, help="payloads per class (mix)")
    parser.add_argument(
        "--crs-sample",
        type=int,
        default=8,
        help="mix: CRS alone on 1 in N benign simulated requests (1: all; ~1.5 ms each)",
    )
    parser.add_argument("--seed", type=int, default=303, help="simulator seed (mix, traps)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse simulated files and findings left in --out by an earlier run",
    )
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}: choose from {', '.join(SECTIONS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    _OPTIONS["reuse"] = args.reuse
    shared = SHARED_DATA.is_dir()
    print(f"shared evaluation data: {'found at ' + str(SHARED_DATA) if shared else 'absent'}")
    print(f"payload stage sources: {_sources_digest()}")
    runs: dict[str, Callable[[argparse.Namespace], None]] = {
        "crs": crs_section,
        "csic": csic_section,
        "mix": mix_section,
        "traps": traps_section,
        "throughput": throughput_section,
    }
    for name in SECTIONS:
        if name not in chosen:
            continue
        started = time.monotonic()
        runs[name](args)
        print(f"   ({name}: {time.monotonic() - started:,.0f} s)")


# -- 1. CRS regression cases -----------------------------------------------------------


def crs_section(args: argparse.Namespace) -> None:
    print("\n== 1. OWASP CRS regression cases, paranoia level 1 ==")
    if not (SHARED_DATA / "crs-regression").is_dir():
        print(f"   {SHARED_DATA / 'crs-regression'} is absent: section skipped")
        return
    every = [c for c in crs_regression() if c.paranoia_level == 1]
    cases = [c for c in every if c.family < RESPONSE_FAMILIES]
    crs = CrsEngine.load(paranoia_level=1)
    inspector = PayloadInspector(
        crs, Prefilter.from_rules(RULES_DIR, paranoia_level=1, allowed_methods=API_METHODS)
    )
    # Each case is a request to an application of its own (the regression suite tests
    # rules one request at a time): a fresh detector per case, so the cases do not
    # teach one parameter profile what the next case's parameter holds.
    found: list[Finding] = []
    alone: dict[str, list[RuleMatch]] = {}
    inspected: dict[str, tuple[RuleMatch, ...]] = {}
    with timed() as t:
        for i, case in enumerate(cases):
            event = case.event._replace(client_ip=_case_ip(i), ts=1_700_000_000.0 + i)
            request = rebuild(event)
            alone[case.name] = crs.inspect(
                request.method, request.uri, request.headers, request.body
            )
            inspected[case.name] = inspector.inspect(request)
            detector = PayloadDetector(PayloadParams())
            detector.bind(found.append, evidence_limit=None)
            detector.observe(event)
            detector.advance(math.inf)
    positives = sum(c.positive for c in cases)
    left_out = len(every) - len(cases)
    print(
        f"   {positives:,} positive and {len(cases) - positives:,} negative PL1 cases "
        f"({left_out} of response rules 95x and "
        f"{crs_skipped()} raw encoded_request cases at all levels left out; "
        f"tests of CRS 4.x, rules of Debian's CRS 3.3: some expected ids do not exist here); "
        f"{t.cpu:.0f} CPU-s"
    )
    gw_rules: dict[str, set[int]] = collections.defaultdict(set)
    gw_kinds: dict[str, set[str]] = collections.defaultdict(set)
    for finding in found:
        if finding.kind in FLAG_KINDS:
            for rid in finding.evidence:
                gw_rules[rid].update(finding.extra.get("rules", ()))
                gw_kinds[rid].add(f"{finding.kind}/{finding.subkind}")
    rid_of = {c.name: c.event.request_id for c in cases}

    def attack_rules(matches: Iterable[RuleMatch]) -> set[int]:
        """Rules Gatewatch reports (not the policy and scanner ones it takes as context)."""
        return {m.rule_id for m in matches if read(m).kind in FLAG_KINDS}

    rows: dict[Any, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    lost: list[str] = []
    missed: dict[int, list[str]] = collections.defaultdict(list)
    for case in cases:
        ids = {m.rule_id for m in alone[case.name]}
        attack = attack_rules(alone[case.name])
        flagged = rid_of[case.name] in gw_rules
        rules = gw_rules.get(rid_of[case.name], set())
        for key in ("all", case.family):
            row = rows[key]
            if ids and not inspected[case.name]:
                row["lost"] += 1
                if key == "all":
                    lost.append(f"{case.name} ({'+' if case.positive else '-'}): CRS {sorted(ids)}")
            partial = ids - {m.rule_id for m in inspected[case.name]}
            if inspected[case.name] and partial:
                row["partial"] += 1
                if key == "all":
                    lost.append(
                        f"{case.name} ({'+' if case.positive else '-'}): CRS {sorted(ids)}, "
                        f"the inspector without {sorted(partial)}"
                    )
            if case.positive:
                row["pos"] += 1
                row["crs"] += bool(ids)
                row["crs_attack"] += bool(attack)
                row["gw_of_crs"] += bool(ids) and flagged
                row["gw_of_attack"] += bool(attack) and flagged
                row["gw_only"] += flagged and not ids
                row["exp_crs"] += case.expect_ids <= ids
                row["exp_gw"] += case.expect_ids <= rules
                if key == "all" and attack and not flagged:
                    signals = ", ".join(
                        f"{m.rule_id} {read(m).kind}/{read(m).subkind} sev {m.severity}"
                        for m in alone[case.name]
                    )
                    missed[min(attack)].append(
                        f"{case.name}: {signals}; {_request_text(case.event)[:100]}"
                    )
            else:
                row["neg"] += 1
                row["neg_crs"] += bool(ids)
                row["neg_crs_rule"] += bool(case.expect_ids & ids)
                row["neg_gw"] += flagged
    total = rows["all"]
    figure(
        "cases CRS alone flags that the inspector returns nothing for",
        total["lost"],
        "cases",
        "target 0",
    )
    figure(
        "cases the inspector returns only some of CRS's rules for",
        total["partial"],
        "cases",
    )
    figure(
        "positives CRS alone flags",
        total["crs"],
        "cases",
        f"of {total['pos']:,} ({_pct(total['crs'], total['pos'])}); "
        f"{total['crs_attack']:,} with a rule Gatewatch reports (not policy/scanner context)",
    )
    figure(
        "  Gatewatch flags of those",
        100 * total["gw_of_crs"] / max(total["crs"], 1),
        "%",
        f"{total['gw_of_crs']:,} of {total['crs']:,} (target >= 99%)",
    )
    figure(
        "  Gatewatch flags of those with a rule it reports",
        100 * total["gw_of_attack"] / max(total["crs_attack"], 1),
        "%",
        f"{total['gw_of_attack']:,} of {total['crs_attack']:,}",
    )
    figure("positives Gatewatch flags that CRS alone does not", total["gw_only"], "cases")
    figure(
        "expected rules fired: CRS alone",
        total["exp_crs"],
        "cases",
        f"of {total['pos']:,} ({_pct(total['exp_crs'], total['pos'])})",
    )
    figure(
        "expected rules fired: Gatewatch (rules of its findings)",
        total["exp_gw"],
        "cases",
        f"of {total['pos']:,} ({_pct(total['exp_gw'], total['pos'])}); policy rules never listed",
    )
    figure(
        "negatives CRS alone flags (any rule)",
        total["neg_crs"],
        "cases",
        f"of {total['neg']:,}; {total['neg_crs_rule']:,} fire the rule that must not",
    )
    figure("negatives Gatewatch flags", total["neg_gw"], "cases", f"of {total['neg']:,}")
    print(
        "\n   family   pos  CRS  CRS-np  GW|CRS  share  GW|np  GW-only  expCRS  expGW"
        "   neg  negCRS  negGW  lost"
    )
    for family in sorted(k for k in rows if k != "all"):
        r = rows[family]
        print(
            f"   {family:6} {r['pos']:5} {r['crs']:4} {r['crs_attack']:7} {r['gw_of_crs']:7}"
            f" {_pct(r['gw_of_crs'], r['crs']):>6} {r['gw_of_attack']:6} {r['gw_only']:8}"
            f" {r['exp_crs']:7} {r['exp_gw']:6} {r['neg']:5} {r['neg_crs']:7} {r['neg_gw']:6}"
            f" {r['lost']:5}"
        )
    print(
        "   (CRS-np: CRS alone flags with a rule other than policy/scanner context; GW|CRS: "
        "Gatewatch flags of the positives CRS alone flags; GW|np: of CRS-np)"
    )
    kinds = collections.Counter(k for ks in gw_kinds.values() for k in ks)
    print("   Gatewatch finding kinds on the cases: " + _counts(kinds, 12))
    if lost:
        print(f"   prefilter losses, whole or partial ({len(lost)}):")
        for line in lost[:20]:
            print(f"     {line}")
    if missed:
        count = sum(map(len, missed.values()))
        print(
            f"   positives CRS alone flags with a reported rule, Gatewatch not ({count}), by rule:"
        )
        for rule, lines in sorted(missed.items(), key=lambda item: -len(item[1])):
            print(f"     {rule}: {len(lines)} case(s), e.g. {lines[0]}")
    stats = inspector.stats
    print(
        f"   inspector on the cases: {stats.requests:,} requests, {stats.skipped:,} skipped by "
        f"the prefilter, {stats.cached:,} cached, {stats.crs:,} through CRS"
    )


def _case_ip(i: int) -> str:
    return f"198.18.{i >> 8 & 255}.{i & 255}"


# -- 2. CSIC 2010 ----------------------------------------------------------------------


def csic_section(args: argparse.Namespace) -> None:
    print("\n== 2. CSIC 2010 (dev split) ==")
    if not (CSIC / "canonical.jsonl.gz").is_file():
        print(f"   {CSIC} is absent: section skipped")
        return
    work = args.out / "csic"
    work.mkdir(parents=True, exist_ok=True)
    canonical = work / "canonical.jsonl"
    with gzip.open(CSIC / "canonical.jsonl.gz", "rb") as source, canonical.open("wb") as target:
        shutil.copyfileobj(source, target)
    for name in ("labels.jsonl", "attacks.json"):
        shutil.copyfile(CSIC / name, work / name)
    events = _count_lines(canonical)
    labels = _labels(work)
    findings_path = work / "findings.jsonl"
    detect = _Detect(canonical, findings_path)  # runs while CRS alone does, below
    anomalous = {r for r, a in labels.items() if a == "csic_anomalous"}
    crs_figures = _crs_on_csic(canonical, anomalous)
    cpu = detect.wait()
    summary = _score(work, findings_path, events)
    findings = _read_findings(findings_path)
    flagged = _flagged(findings, PAYLOAD_KINDS)
    normal = events - len(labels)
    _detect_figure(events, cpu)
    if summary:
        rows = {r["attack"]: r for r in summary["rows"]}
        recall = rows.get("csic_anomalous", {}).get("request_recall", 0.0)
        figure(
            "Gatewatch: anomalous requests flagged (scorer)",
            100 * recall,
            "%",
            f"of {len(anomalous):,}",
        )
        figure(
            "Gatewatch: benign requests flagged (scorer, all kinds)",
            summary["summary"]["benign_requests_flagged_per_100k"],
            "per 100k",
            f"of {normal:,} normal",
        )
    payload_hits = len(flagged & anomalous)
    figure(
        "Gatewatch: anomalous in payload-stage findings",
        100 * payload_hits / max(len(anomalous), 1),
        "%",
        f"{payload_hits:,} of {len(anomalous):,}",
    )
    benign_hits = len({r for r in flagged if r not in labels})
    figure(
        "Gatewatch: normal in payload-stage findings",
        benign_hits * 1e5 / max(normal, 1),
        "per 100k",
        f"{benign_hits:,} of {normal:,}",
    )
    print("   Gatewatch findings by kind: " + _counts(_kinds(findings), 12))
    crs_figures(flagged)


def _crs_on_csic(canonical: Path, anomalous: set[str]) -> Callable[[set[str]], None]:
    """CRS alone on every request; the figures are printed by the function returned
    (given the requests Gatewatch's payload stage flagged)."""
    crs = CrsEngine.load(paranoia_level=1)
    any_hit = {True: 0, False: 0}
    attack_hit = {True: 0, False: 0}
    totals = {True: 0, False: 0}
    attacks: dict[str, tuple[list[int], str]] = {}
    benign_rules: collections.Counter[int] = collections.Counter()
    all_rules: collections.Counter[int] = collections.Counter()
    with timed() as t:
        for event in canonical_events(canonical):
            rid = _norm(event.request_id)
            bad = rid in anomalous
            request = rebuild(event)
            matches = crs.inspect(request.method, request.uri, request.headers, request.body)
            attack = [m.rule_id for m in matches if read(m).kind != "policy"]
            totals[bad] += 1
            any_hit[bad] += bool(matches)
            attack_hit[bad] += bool(attack)
            all_rules.update(m.rule_id for m in matches if read(m).kind == "policy")
            if not bad:
                benign_rules.update(attack)
            elif attack:
                attacks[rid] = (sorted(attack), _request_text(event)[:110])

    def report(flagged: set[str]) -> None:
        n = totals[True] + totals[False]
        figure("CRS alone per request", t.cpu / max(n, 1) * 1000, "ms", f"{n:,} requests")
        for name, hits in (("all rules", any_hit), ("without policy rules", attack_hit)):
            figure(
                f"CRS alone, {name}: anomalous flagged",
                100 * hits[True] / max(totals[True], 1),
                "%",
                f"{hits[True]:,} of {totals[True]:,}",
            )
            figure(
                f"CRS alone, {name}: normal flagged",
                hits[False] * 1e5 / max(totals[False], 1),
                "per 100k",
                f"{hits[False]:,} of {totals[False]:,}",
            )
        print("   CRS alone, policy rules matched: " + _counts(all_rules, 8))
        print("   CRS alone on normal requests, non-policy rules: " + _counts(benign_rules, 10))
        both = sum(rid in flagged for rid in attacks)
        print(
            f"   anomalous requests CRS alone flags with a non-policy rule: {len(attacks):,}; "
            f"Gatewatch's payload stage flags {both:,} of them"
        )
        missed: dict[int, list[str]] = collections.defaultdict(list)
        for rid, (rules, text) in attacks.items():
            if rid not in flagged:
                missed[rules[0]].append(f"CRS {rules}: {text}")
        print("   those Gatewatch misses, by CRS's first rule:")
        for rule, lines in sorted(missed.items(), key=lambda item: -len(item[1]))[:15]:
            print(f"     {rule}: {len(lines):,}, e.g. {lines[0]}")

    return report


# -- 3. payload lists mixed into simulated traffic -------------------------------------


def mix_section(args: argparse.Namespace) -> None:
    print("\n== 3. Payload lists in one hour of simulated benign traffic ==")
    needed = [SHARED_DATA / d for d in ("httpparams", "payloadsallthethings", "fuzzdb")]
    if not all(p.is_dir() for p in needed):
        print(f"   {', '.join(str(p) for p in needed if not p.is_dir())} absent: section skipped")
        return
    work = args.out / "mix"
    benign_dir = work / "benign"
    _simulate(benign_dir, "--duration", "3600", "--seed", str(args.seed), "--start", START)
    payloads = attack_payloads(args.limit)
    values = benign_values(3000)
    print(
        "   payloads per class: "
        + ", ".join(f"{cls} {len(p)}" for cls, p in sorted(payloads.items()))
        + f"; {len(values):,} httpparams norm values as benign searches"
    )
    variants = (("few-per-ip", 8), ("one-per-ip", 1))
    mixes: dict[str, Any] = {}
    running: dict[str, _Detect] = {}
    for variant, per_ip in variants:
        out = work / variant
        mixes[variant] = PayloadMix(payloads, per_ip=per_ip, seed=args.seed, benign=values).build(
            benign_dir / "canonical.jsonl", out
        )
        running[variant] = _Detect(out / "canonical.jsonl", out / "findings.jsonl")
    # CRS alone meanwhile (attack requests are the same in both variants, only the
    # addresses and times differ)
    crs = _crs_on_mix(work / "few-per-ip", mixes["few-per-ip"], args.crs_sample)
    results: dict[str, dict[str, Any]] = {}
    for variant, per_ip in variants:
        out, stats = work / variant, mixes[variant]
        cpu = running[variant].wait()
        events = _count_lines(out / "canonical.jsonl")
        print(
            f"\n   -- {variant}: {events:,} events, {sum(stats.attacks.values()):,} attack "
            f"requests from {stats.attacker_ips:,} addresses ({per_ip} at most each), "
            f"{stats.cart_bodies:,} benign cart requests given a JSON body --"
        )
        _detect_figure(events, cpu)
        findings_path = out / "findings.jsonl"
        _score(out, findings_path, events, table=False)
        findings = _read_findings(findings_path)
        results[variant] = _mix_results(out, findings, stats, events)
        print("   findings by kind: " + _counts(_kinds(findings), 14))
    _mix_report(payloads, mixes, results, crs)


def _mix_results(
    out: Path, findings: list[dict[str, Any]], stats: Any, events: int
) -> dict[str, Any]:
    labels = _labels(out)
    accepted = _flagged(findings, PAYLOAD_KINDS)
    subkinds: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for finding in findings:
        if finding["kind"] in PAYLOAD_KINDS:
            for rid in finding.get("evidence") or ():
                cls = labels.get(_norm(rid))
                if cls:
                    subkinds[cls][f"{finding['kind']}/{finding.get('subkind', '')}"] += 1
    flagged_any = _flagged(findings, None)
    benign = events - len(labels)
    benign_payload = {r for r in accepted if r not in labels}
    norm_ids = {_norm(r) for r in stats.norm_ids}
    texts: dict[str, str] = {}
    search = search_flagged = 0
    ips: collections.Counter[str] = collections.Counter()
    for line in (out / "canonical.jsonl").open("rb"):
        event = orjson.loads(line)
        rid = _norm(event["request_id"])
        if rid in labels:
            continue
        if event["path"] == SEARCH:
            search += 1
            search_flagged += rid in benign_payload
        if rid in benign_payload:
            texts[rid] = _canonical_text(event)
            ips[event.get("client_ip") or "?"] += 1
    return {
        "texts": texts,
        "search": search,
        "search_flagged": search_flagged,
        "injection": _flagged(findings, frozenset({"injection"})),
        "labels": labels,
        "accepted": accepted,
        "subkinds": subkinds,
        "benign": benign,
        "benign_payload": len(benign_payload),
        "benign_any": len({r for r in flagged_any if r not in labels}),
        "norm_flagged": len(benign_payload & norm_ids),
        "benign_samples": benign_payload - norm_ids,
        "ips": ips,
        "norm_samples": benign_payload & norm_ids,
    }


def _crs_on_mix(out: Path, stats: Any, sample: int) -> dict[str, Any]:
    """CRS alone on every attack request, every httpparams value, and 1 in ``sample``
    benign simulated requests (chosen by a hash of the request id)."""
    crs = CrsEngine.load(paranoia_level=1)
    labels = _labels(out)
    norm_ids = {_norm(r) for r in stats.norm_ids}
    per_class: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    benign: collections.Counter[str] = collections.Counter()
    flagged_attacks: set[str] = set()
    with timed() as t:
        for event in canonical_events(out / "canonical.jsonl"):
            rid = _norm(event.request_id)
            cls = labels.get(rid)
            norm = rid in norm_ids
            if cls is None and not norm and zlib.crc32(rid.encode()) % sample:
                continue
            request = rebuild(event)
            matches = crs.inspect(request.method, request.uri, request.headers, request.body)
            attack = any(read(m).kind != "policy" for m in matches)
            if cls is not None:
                per_class[cls]["n"] += 1
                per_class[cls]["any"] += bool(matches)
                per_class[cls]["attack"] += attack
                if matches:
                    flagged_attacks.add(rid)
            else:
                key = "norm" if norm else ("search" if event.route == SEARCH else "other")
                benign[f"{key}_n"] += 1
                benign[f"{key}_any"] += bool(matches)
                benign[f"{key}_attack"] += attack
    checked = sum(c["n"] for c in per_class.values()) + sum(
        benign[k] for k in ("norm_n", "search_n", "other_n")
    )
    figure(
        "CRS alone per request (mix)", t.cpu / max(checked, 1) * 1000, "ms", f"{checked:,} requests"
    )
    return {"per_class": per_class, "benign": benign, "flagged": flagged_attacks, "sample": sample}


def _mix_report(
    payloads: dict[str, list[Any]],
    mixes: dict[str, Any],
    results: dict[str, dict[str, Any]],
    crs: dict[str, Any],
) -> None:
    variants = list(results)
    first = results[variants[0]]
    labels = first["labels"]
    stats = mixes[variants[0]]
    slot_of = {_norm(r): s for r, s in stats.slot_of.items()}
    payload_of = {_norm(r): p for r, p in stats.payload_of.items()}
    print(
        "\n   per class recall: share of the class's requests in evidence of "
        "injection/malformed/oversized/anomaly findings (inj: injection findings only); "
        f"CRS alone on the {variants[0]} requests; GW-miss: CRS alone flags, Gatewatch not"
    )
    head = "".join(f"{v:>12}" for v in variants)
    print(f"   class             n{head}  inj {variants[0]:>10}   CRS any  CRS no-policy  GW-miss")
    totals: collections.Counter[str] = collections.Counter()
    for cls in sorted(payloads):
        cells = ""
        for v in variants:
            ids = {r for r, c in results[v]["labels"].items() if c == cls}
            hit = len(ids & results[v]["accepted"])
            totals[v] += hit
            cells += f"{_pct(hit, len(ids)):>12}"
        ids = {r for r, c in labels.items() if c == cls}
        if not ids:
            continue
        injection = len(ids & first["injection"])
        totals["inj"] += injection
        gw_miss = len((ids & crs["flagged"]) - first["accepted"])
        totals["gw_miss"] += gw_miss
        c = crs["per_class"][cls]
        totals["crs_any"] += c["any"]
        totals["crs_attack"] += c["attack"]
        totals["n"] += len(ids)
        print(
            f"   {cls:14} {len(ids):4}{cells} {_pct(injection, len(ids)):>15}"
            f" {_pct(c['any'], c['n']):>9} {_pct(c['attack'], c['n']):>14} {gw_miss:8}"
        )
    cells = "".join(f"{_pct(totals[v], totals['n']):>12}" for v in variants)
    print(
        f"   {'all':14} {totals['n']:4}{cells} {_pct(totals['inj'], totals['n']):>15}"
        f" {_pct(totals['crs_any'], totals['n']):>9} {_pct(totals['crs_attack'], totals['n']):>14}"
        f" {totals['gw_miss']:8}"
    )
    for v in variants:
        figure(
            f"Gatewatch ({v}): attack requests flagged",
            100 * totals[v] / max(totals["n"], 1),
            "%",
            f"{totals[v]:,} of {totals['n']:,}",
        )
    figure(
        f"CRS alone ({variants[0]}): attack requests flagged",
        100 * totals["crs_any"] / max(totals["n"], 1),
        "%",
        f"{totals['crs_any']:,}; without policy rules {totals['crs_attack']:,}",
    )
    print(f"\n   recall by where the payload was put ({' | '.join(variants)} | CRS any)")
    by_slot: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for v in variants:
        for rid, slot in mixes[v].slot_of.items():
            by_slot[slot][f"{v}_n"] += 1
            by_slot[slot][v] += _norm(rid) in results[v]["accepted"]
    for rid, slot in slot_of.items():
        by_slot[slot]["crs"] += rid in crs["flagged"]
    for slot, c in sorted(by_slot.items()):
        n = c[f"{variants[0]}_n"]
        cells = " | ".join(_pct(c[v], c[f"{v}_n"]) for v in variants)
        print(f"   {slot:14} {n:5}  {cells} | {_pct(c['crs'], n)}")
    print()
    for v in variants:
        r = results[v]
        figure(
            f"Gatewatch ({v}): benign flagged, payload kinds",
            r["benign_payload"] * 1e5 / max(r["benign"], 1),
            "per 100k",
            f"{r['benign_payload']:,} of {r['benign']:,}; all kinds {r['benign_any']:,}",
        )
        figure(
            f"Gatewatch ({v}): benign searches flagged",
            r["search_flagged"] * 1e5 / max(r["search"], 1),
            "per 100k",
            f"{r['search_flagged']:,} of {r['search']:,} (httpparams values included)",
        )
        figure(
            f"Gatewatch ({v}): httpparams norm searches flagged",
            r["norm_flagged"],
            "requests",
            f"of {len(mixes[v].norm_ids):,}",
        )
    b = crs["benign"]
    for key, label in (
        ("search", "benign searches"),
        ("other", "other benign"),
        ("norm", "norm searches"),
    ):
        for rules in ("any", "attack"):
            figure(
                f"CRS alone ({'all rules' if rules == 'any' else 'no policy'}): {label} flagged",
                b[f"{key}_{rules}"] * 1e5 / max(b[f"{key}_n"], 1),
                "per 100k",
                f"{b[f'{key}_{rules}']:,} of {b[f'{key}_n']:,} checked",
            )
    simulated = b["search_n"] + b["other_n"]
    sim_any = b["search_any"] + b["other_any"]
    sim_attack = b["search_attack"] + b["other_attack"]
    figure(
        "CRS alone: simulated benign flagged (all rules)",
        sim_any * 1e5 / max(simulated, 1),
        "per 100k",
        f"1 in {crs['sample']} benign simulated requests checked ({simulated:,})",
    )
    figure(
        "CRS alone: simulated benign flagged (no policy)",
        sim_attack * 1e5 / max(simulated, 1),
        "per 100k",
    )
    # what Gatewatch missed, by class (few-per-ip), and what it flagged that is benign
    print("\n   missed payloads (few-per-ip), up to 6 per class, with the slot:")
    for cls in sorted(payloads):
        missed = sorted(r for r, c in labels.items() if c == cls and r not in first["accepted"])
        if not missed:
            continue
        subkinds = _counts(first["subkinds"][cls], 5)
        print(f"   {cls} ({len(missed)} missed; finding subkinds on the class: {subkinds})")
        for rid in missed[:: max(1, len(missed) // 6)][:6]:
            print(f"     [{slot_of.get(rid, '?')}] {payload_of[rid].text[:120]!r}")
    for v in variants:
        r = results[v]
        if r["benign_samples"] or r["norm_samples"]:
            print(f"   benign requests flagged ({v}):")
            for rid in sorted(r["norm_samples"])[:10]:
                print(f"     httpparams norm value: {r['texts'].get(rid, rid)}")
            print(f"     by client address: {_counts(r['ips'], 6)}")
            texts = collections.Counter(r["texts"].get(rid, rid) for rid in r["benign_samples"])
            for text, n in texts.most_common(20):
                print(f"     {n:4} x {text}")


# -- 4. benign traps -------------------------------------------------------------------


def traps_section(args: argparse.Namespace) -> None:
    print("\n== 4. Benign traps in one hour of simulated traffic with attack episodes ==")
    work = args.out / "traps"
    _simulate(
        work, "--attacks", "all", "--duration", "3600", "--seed", str(args.seed), "--start", START
    )
    canonical = work / "canonical.jsonl"
    events = _count_lines(canonical)
    findings_path = work / "findings.jsonl"
    cpu = _detect(canonical, findings_path)
    _detect_figure(events, cpu)
    _score(work, findings_path, events, table=True)
    findings = _read_findings(findings_path)
    labels = _labels(work)
    flagged = _flagged(findings, TRAP_KINDS)
    protocol = _flagged(findings, frozenset({"malformed_request", "oversized_payload"}))
    counts: collections.Counter[str] = collections.Counter()
    values: collections.Counter[str] = collections.Counter()
    others: collections.Counter[str] = collections.Counter()
    phrases: collections.Counter[str] = collections.Counter()
    for line in canonical.open("rb"):
        if not line.strip():
            continue
        event = orjson.loads(line)
        rid = _norm(event["request_id"])
        if rid in labels:
            continue
        search = event["path"] == SEARCH
        q = dict(parse_qsl(event.get("query") or "")).get("q", "") if search else ""
        counts["benign"] += 1
        counts["search"] += search
        for phrase in TRAP_PHRASES:
            if phrase in q:
                phrases[f"{phrase}_n"] += 1
                phrases[f"{phrase}_hit"] += rid in flagged
        if rid in flagged:
            counts["flagged"] += 1
            counts["search_flagged"] += search
            if search:
                values[q] += 1
            else:
                others[f"{event['method']} {event['path']}?{event.get('query') or ''}"[:120]] += 1
        if rid in protocol:
            counts["protocol"] += 1
            others[f"[protocol] {event['method']} {event['path']}"[:120]] += 1
    figure(
        "benign searches in injection/anomaly evidence",
        counts["search_flagged"] * 1e5 / max(counts["search"], 1),
        "per 100k",
        f"{counts['search_flagged']:,} of {counts['search']:,} (target <= 10)",
    )
    figure(
        "all benign in injection/anomaly evidence",
        counts["flagged"] * 1e5 / max(counts["benign"], 1),
        "per 100k",
        f"{counts['flagged']:,} of {counts['benign']:,}",
    )
    figure(
        "all benign in malformed/oversized evidence",
        counts["protocol"] * 1e5 / max(counts["benign"], 1),
        "per 100k",
        f"{counts['protocol']:,}",
    )
    for phrase in TRAP_PHRASES:
        n, hit = phrases[f"{phrase}_n"], phrases[f"{phrase}_hit"]
        print(f"   searches for {phrase!r}: {n:,}, flagged {hit:,}")
    if values:
        print("   flagged benign search values: " + _counts(values, 25))
    if others:
        print("   other flagged benign requests: " + _counts(others, 15))


# -- 5. throughput ---------------------------------------------------------------------


def throughput_section(args: argparse.Namespace) -> None:
    print("\n== 5. Throughput of the payload stage alone ==")
    settings = load_settings(None, data_dir=str(args.out), ingest={"fingerprint_salt": "bench"})
    config = SimulationConfig(seed=11, start_ts=1_710_230_400.0, count=args.events, duration_s=None)
    render = RENDERERS["canonical"]
    pipeline = build_pipeline(settings, "canonical", for_storage=False)
    events = [
        e
        for e in (
            pipeline.process(Record("bench", i, line, len(line)))
            for i, line in enumerate(map(render, generate(config)))
        )
        if type(e) is Event
    ]
    print(f"   {len(events):,} simulated benign events (seed 11), parsed as in production")
    for label, params in (
        ("payload stage (CRS behind the prefilter)", PayloadParams()),
        ("payload stage without CRS (signatures, profiles)", PayloadParams(crs=False)),
    ):
        detector = PayloadDetector(params)
        engine = DetectionEngine([detector], lambda f: None, allowed_lateness_s=5)
        t = feed(engine, events)
        figure(
            label,
            len(events) / t.cpu,
            "events/cpu-s",
            f"{t.cpu / len(events) * 1e6:.1f} us/event; {engine.stats.findings:,} finding versions"
            + ("; target >= 30k" if params.crs else ""),
        )
        stats = detector.inspector.stats if detector.inspector is not None else None
        if stats is not None and stats.requests:
            n = stats.requests
            figure("  skipped by the prefilter", 100 * stats.skipped / n, "%", f"{stats.skipped:,}")
            figure("  cached verdicts", 100 * stats.cached / n, "%", f"{stats.cached:,}")
            figure("  run through CRS", 100 * stats.crs / n, "%", f"{stats.crs:,}")
            figure("  with a CRS match", 100 * stats.flagged / n, "%", f"{stats.flagged:,}")
    crs = CrsEngine.load(paranoia_level=1)
    sample = [rebuild(e) for e in events[:3000]]
    with timed() as t:
        for request in sample:
            crs.inspect(request.method, request.uri, request.headers, request.body)
    figure(
        "CRS alone per request",
        t.cpu / len(sample) * 1000,
        "ms",
        f"{len(sample) / t.cpu:,.0f} events/cpu-s; first {len(sample):,} events",
    )


# -- helpers ---------------------------------------------------------------------------


_OPTIONS = {"reuse": False}


def _simulate(labels: Path, *args: str) -> None:
    if _OPTIONS["reuse"] and (labels / "canonical.jsonl").is_file():
        print(f"   reusing {labels / 'canonical.jsonl'}")
        return
    subprocess.run(
        [sys.executable, "-m", "gatewatch", "simulate", *args, "--labels", str(labels)], check=True
    )


class _Detect:
    """``gatewatch detect`` in a child process, so the CRS-alone reference can run
    meanwhile on the other core; ``wait`` returns the child's CPU seconds."""

    def __init__(self, canonical: Path, findings: Path) -> None:
        command = [
            sys.executable, "-m", "gatewatch", "detect", "-i", str(canonical), "-f", "canonical",
            "-o", str(findings), "--no-progress",
        ]  # fmt: skip
        self.process = None
        if _OPTIONS["reuse"] and findings.is_file():
            print(f"   reusing {findings}")
            return
        self.process = subprocess.Popen(command)

    def wait(self) -> float:
        """CPU seconds of the child (0: findings reused)."""
        if self.process is None:
            return 0.0
        _, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        if self.process.returncode:
            raise subprocess.CalledProcessError(self.process.returncode, self.process.args)
        return usage.ru_utime + usage.ru_stime


def _detect_figure(events: int, cpu: float) -> None:
    if cpu:
        figure(
            "gatewatch detect, all detectors", events / cpu, "events/cpu-s", f"{events:,} events"
        )
    else:
        print(f"   gatewatch detect: findings reused ({events:,} events)")


def _detect(canonical: Path, findings: Path) -> float:
    return _Detect(canonical, findings).wait()


def _score(
    labels: Path, findings: Path, events: int, *, table: bool = True
) -> dict[str, Any] | None:
    """The shared scorer's table (or its summary line) and its JSON."""
    if not SCORER.is_file():
        print(f"   {SCORER} is absent: scoring skipped")
        return None
    command = [sys.executable, str(SCORER), str(labels), str(findings), "--events", str(events)]
    text = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    lines = text.strip().splitlines()
    for line in lines if table else lines[-1:]:
        print(f"   score.py: {line}")
    scored: dict[str, Any] = orjson.loads(
        subprocess.run([*command, "--json"], check=True, capture_output=True).stdout
    )
    return scored


def _read_findings(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _flagged(findings: list[dict[str, Any]], kinds: frozenset[str] | None) -> set[str]:
    return {
        _norm(rid)
        for f in findings
        if kinds is None or f["kind"] in kinds
        for rid in f.get("evidence") or ()
    }


def _kinds(findings: list[dict[str, Any]]) -> collections.Counter[str]:
    return collections.Counter(
        f"{f['kind']}/{f['subkind']}" if f.get("subkind") else f["kind"] for f in findings
    )


def _labels(directory: Path) -> dict[str, str]:
    path = directory / "labels.jsonl"
    if not path.is_file():
        return {}
    return {
        _norm(x["request_id"]): x["attack_id"]
        for x in map(orjson.loads, path.read_bytes().splitlines())
        if x
    }


def _norm(rid: str) -> str:
    return str(rid).replace("-", "").lower()  # as the scorer compares request ids


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _request_text(event: Event) -> str:
    text = f"{event.method} {event.path}"
    if event.query:
        text += f"?{event.query}"
    if event.body:
        text += f" body={event.body!r}"
    return text


def _canonical_text(event: dict[str, Any]) -> str:
    text = f"{event['method']} {event['path']}"
    if event.get("query"):
        text += f"?{event['query']}"
    if event.get("body"):
        text += f" body={event['body'][:80]!r}"
    return text[:160]


def _sources_digest() -> str:
    """Which version of the payload stage the figures are about (it changes often)."""
    digest = hashlib.blake2b(digest_size=6)
    package = Path(str(sys.modules[PayloadDetector.__module__].__file__)).parent
    crs = Path(str(sys.modules[CrsEngine.__module__].__file__))
    for path in [*sorted(package.glob("*.py")), crs]:
        digest.update(path.read_bytes())
    return f"{digest.hexdigest()} (blake2b of detectors/payload/*.py and detectors/crs.py)"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _counts(counter: collections.Counter[Any], top: int) -> str:
    if not counter:
        return "none"
    return ", ".join(f"{k} {v}" for k, v in counter.most_common(top))


if __name__ == "__main__":
    main()
