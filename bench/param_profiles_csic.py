"""Parameter profiles alone on CSIC 2010 (dev split): recall and benign requests flagged.

Feeds ``../shared/data/csic2010-dev`` in file order, as a stream would see it, to
``ParamProfiles.check`` (route: the path; params: ``request_params`` of query and
body) and prints, per score threshold, the share of anomalous requests with a deviation
at or above it and the normal requests flagged per 100k, then a breakdown of the
deviations by kind and reason. Anomalous requests are a quarter of the file from its
first line, so warm-up learns from contaminated traffic, as it would in production.
Without ../shared it says so and exits.

    python -m bench.param_profiles_csic [--warmup 64] [--examples 3]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import re
import time
from datetime import datetime

import orjson

from bench.common import SHARED_DATA
from detectors.payload.params import request_params
from detectors.payload.profiles import ParamProfiles

CSIC = SHARED_DATA / "csic2010-dev"
THRESHOLDS = (0.0, 0.3, 0.45, 0.5, 0.6, 0.75, 0.85)
_NUMBERS = re.compile(r"\d+")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.param_profiles_csic", description=__doc__
    )
    parser.add_argument("--warmup", type=int, default=None, help="override the default warm-up")
    parser.add_argument("--examples", type=int, default=0, help="values shown per reason")
    args = parser.parse_args(argv)
    events_path, labels_path = CSIC / "canonical.jsonl.gz", CSIC / "labels.jsonl"
    if not events_path.is_file() or not labels_path.is_file():
        print(f"{CSIC} is absent: nothing to evaluate")
        return
    anomalous = {
        orjson.loads(line)["request_id"] for line in labels_path.read_bytes().splitlines() if line
    }
    profiles = ParamProfiles() if args.warmup is None else ParamProfiles(warmup=args.warmup)
    print(profiles)
    top: dict[bool, list[float]] = {True: [], False: []}
    with_params: list[float] = []  # anomalous requests that carry parameters
    reasons: collections.Counter[tuple[bool, str, str]] = collections.Counter()
    examples: dict[tuple[bool, str, str], list[str]] = collections.defaultdict(list)
    spent = 0.0
    values = 0
    with gzip.open(events_path) as lines:
        for line in lines:
            event = orjson.loads(line)
            bad = event["request_id"] in anomalous
            params = request_params(
                event["query"] or "",
                event["body"] or "",
                (event["headers"] or {}).get("content-type", ""),
            )
            ts = datetime.fromisoformat(event["ts"]).timestamp()
            started = time.perf_counter()
            deviations = profiles.check(event["path"], params, ts)
            spent += time.perf_counter() - started
            values += len(params)
            score = max((d.score for d in deviations), default=-1.0)
            top[bad].append(score)
            if bad and params:
                with_params.append(score)
            for d in deviations:
                key = (bad, str(d.kind), _NUMBERS.sub("N", d.reason))
                reasons[key] += 1
                if len(examples[key]) < args.examples:
                    examples[key].append(f"{d.name}={d.value[:80]!r}")
    requests = len(top[True]) + len(top[False])
    print(
        f"{requests} requests ({len(top[True])} anomalous, {len(with_params)} of them with "
        f"parameters), {values} values; check "
        f"{spent / requests * 1e6:.2f} us per request, {spent / max(1, values) * 1e6:.2f} us "
        f"per value; {profiles.tracked()} parameters on {len(profiles.routes)} routes"
    )
    print(
        f"{'score >=':>9} {'anomalous recall':>17} {'(with params)':>14} "
        f"{'normal flagged /100k':>21}"
    )
    for threshold in THRESHOLDS:
        hit = sum(1 for s in top[True] if s >= threshold)
        hit_params = sum(1 for s in with_params if s >= threshold)
        false = sum(1 for s in top[False] if s >= threshold)
        print(
            f"{threshold:>9.2f} {hit / len(top[True]):>16.1%} "
            f"{hit_params / max(1, len(with_params)):>14.1%} "
            f"{false / len(top[False]) * 100_000:>21,.0f}"
        )
    for bad in (True, False):
        print(f"\ndeviations on {'anomalous' if bad else 'normal'} requests, by reason:")
        for (label, kind, reason), count in reasons.most_common():
            if label is bad:
                print(f"  {count:>6}  {kind:22} {reason}")
                for example in examples[(label, kind, reason)]:
                    print(f"          {example}")


if __name__ == "__main__":
    main()
