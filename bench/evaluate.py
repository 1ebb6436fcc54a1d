"""Detection quality on labelled simulated traffic, scored by ../shared/eval/score.py.

For each seed: ``gatewatch simulate --attacks all --labels DIR`` writes two hours of
benign traffic with labelled attack episodes and benign traps, ``gatewatch detect``
runs the streaming detectors over it, and the shared scorer (EVALUATION.md) reports
per attack: detected, delay, evidence share; overall: false findings and benign
requests flagged per 100k. Without ../shared the findings are summarised per kind and
the scoring is skipped, saying so.

    python -m bench.evaluate [--seeds 101,202] [--hours 2]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bench.common import OUT, SHARED_DATA

SCORER = SHARED_DATA.parent / "eval" / "score.py"


def _gatewatch(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gatewatch", *args], check=True)


def evaluate(seed: int, hours: float, out: Path) -> None:
    labels = out / f"seed{seed}"
    started = time.monotonic()
    _gatewatch(
        "simulate",
        "--attacks",
        "all",
        "--labels",
        str(labels),
        "--duration",
        str(int(hours * 3600)),
        "--seed",
        str(seed),
        "--start",
        "2024-03-12T08:00:00Z",
    )
    findings = labels / "findings.jsonl"
    _gatewatch(
        "detect", "-i", str(labels / "canonical.jsonl"), "-f", "canonical", "-o", str(findings)
    )
    print(f"seed {seed}: simulated and detected in {time.monotonic() - started:.0f} s")
    kinds = collections.Counter(
        orjson.loads(line)["kind"] for line in findings.read_bytes().splitlines() if line
    )
    print("  findings by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    if SCORER.is_file():
        subprocess.run([sys.executable, str(SCORER), str(labels), str(findings)], check=True)
    else:
        print(f"  {SCORER} is absent: scoring skipped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.evaluate", description=__doc__)
    parser.add_argument("--seeds", default="101,202", help="comma-separated simulator seeds")
    parser.add_argument("--hours", type=float, default=2.0, help="simulated hours per seed")
    parser.add_argument("--out", type=Path, default=OUT / "evaluate", help="working directory")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        evaluate(seed, args.hours, args.out)


if __name__ == "__main__":
    main()
