"""NAB: the production anomaly model, unchanged, scored by the benchmark's rules.

``python -m bench.nab [--algorithm forecast|hst|robust_z|all]``

Each of NAB's 58 series runs through its own ``WindowModel`` with default
``ModelParams`` (only ``algorithm`` varies), one row a 1-feature window ``[value]``;
timestamps are not shown to the model (they only place rows in the label windows).
Two figures per algorithm and profile:

- *production flag*: ``verdict.anomalous`` taken as the detection, as deployed (the
  threshold is the model's own learnt quantile and z floor; nothing is swept). This is
  what the model would report.
- *NAB method*: ``verdict.score`` with NAB's corpus-wide threshold optimisation per
  profile, the procedure behind the published scoreboard, so comparable with it.

Scoring rules: ``bench.nab_score``. Before the table, a check of the scorer: the
published per-file raw scores, summed and normalised with this scorer's null and
perfect totals, must give the published final scores.

Reads ``../shared/data/nab`` when present; without it, says so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Sequence
from datetime import datetime
from multiprocessing import Pool
from pathlib import Path

from bench.common import SHARED_DATA
from bench.nab_score import (
    Labelled,
    Outcome,
    Profile,
    label_rows,
    normalise,
    profiles_from_config,
    score_detections,
    sweep_threshold,
)
from detectors.anomaly.model import ModelParams, WindowModel

NAB = SHARED_DATA / "nab"
PUBLISHED = ("numenta", "randomCutForest", "twitterADVec", "windowedGaussian")
ALGORITHMS = ("forecast", "hst", "robust_z")
SHORT = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def read_series(path: Path) -> tuple[list[datetime], list[float]]:
    """A NAB data file: ``timestamp,value`` rows."""
    stamps: list[datetime] = []
    values: list[float] = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            stamps.append(_time(row["timestamp"]))
            values.append(float(row["value"]))
    return stamps, values


def run_model(job: tuple[str, str]) -> tuple[list[float], list[bool]]:
    """One file through a fresh production model: (scores, flags) per row."""
    path, algorithm = job
    _, values = read_series(Path(path))
    model = WindowModel(["value"], ModelParams(algorithm=algorithm))  # type: ignore[arg-type]
    scores: list[float] = []
    flags: list[bool] = []
    for value in values:
        verdict = model.judge([value])
        scores.append(verdict.score)
        flags.append(verdict.anomalous)
    return scores, flags


def load_corpus(root: Path) -> dict[str, Labelled]:
    """Every data file, its rows placed against its label windows."""
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    corpus = {}
    for name, limits in sorted(windows.items()):
        stamps, _ = read_series(root / "data" / name)
        corpus[name] = label_rows(stamps, [(_time(a), _time(b)) for a, b in limits])
    return corpus


def check_published(root: Path, profiles: Sequence[Profile], n_windows: int) -> None:
    """Published per-file raw scores, normalised here, against the published finals."""
    final = json.loads((root / "results" / "final_results.json").read_text())
    print("scorer check: published per-file raw scores, summed, normalised with our")
    print(f"null/perfect totals ({n_windows} windows), vs published final scores")
    worst = 0.0
    for detector in PUBLISHED:
        cells = []
        for profile in profiles:
            path = root / "results" / detector / f"{detector}_{profile.name}_scores.csv"
            with path.open(newline="") as handle:
                raw = sum(float(r["Score"]) for r in csv.DictReader(handle) if r["File"])
            ours = normalise(raw, n_windows, profile)
            published = final[detector][profile.name]
            worst = max(worst, abs(ours - published))
            cells.append(f"{SHORT[profile.name]} {ours:6.2f} vs {published:6.2f}")
        print(f"  {detector:17s} " + " | ".join(cells))
    print(f"  largest difference: {worst:.2e}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nab", description=__doc__)
    parser.add_argument("--algorithm", choices=(*ALGORITHMS, "all"), default="all")
    parser.add_argument("--root", type=Path, default=NAB, help="the NAB data directory")
    args = parser.parse_args(argv)
    root: Path = args.root
    if not (root / "labels" / "combined_windows.json").is_file():
        print(f"NAB data not found at {root}: nothing to score (skipped).")
        return 0
    profiles = profiles_from_config(json.loads((root / "config" / "profiles.json").read_text()))
    corpus = load_corpus(root)
    n_windows = sum(rows.n_windows for rows in corpus.values())
    n_rows = sum(len(rows.window) for rows in corpus.values())
    print(f"NAB at {root}: {len(corpus)} files, {n_rows:,} rows, {n_windows} windows")
    check_published(root, profiles, n_windows)
    final = json.loads((root / "results" / "final_results.json").read_text())

    algorithms = ALGORITHMS if args.algorithm == "all" else (args.algorithm,)
    names = list(corpus)
    head = "".join(f"{SHORT[p.name]:>10s}" for p in profiles)
    lines = [f"{'detector':40s}{head}"]
    for algorithm in algorithms:
        start = time.perf_counter()
        with Pool(2) as pool:
            runs = pool.map(run_model, [(str(root / "data" / n), algorithm) for n in names])
        elapsed = time.perf_counter() - start
        print(
            f"{algorithm}: {n_rows:,} windows judged in {elapsed:.1f} s on 2 processes "
            f"({2e6 * elapsed / n_rows:.1f} us per judge, incl. reading)"
        )
        flagged: list[float] = []
        for profile in profiles:
            outcomes = [
                score_detections(corpus[n], flags, profile)
                for n, (_, flags) in zip(names, runs, strict=True)
            ]
            flagged.append(normalise(sum(o.raw for o in outcomes), n_windows, profile))
            if profile.name == "standard":
                _counts(algorithm, outcomes)
        sweeps = [
            sweep_threshold(
                [(corpus[n], scores) for n, (scores, _) in zip(names, runs, strict=True)], p
            )
            for p in profiles
        ]
        lines.append(f"{algorithm + ', production flag':40s}" + _row(flagged))
        lines.append(
            f"{algorithm + ', NAB method (swept score)':40s}"
            + _row([s.normalised for s in sweeps])
            + "   thresholds "
            + ", ".join(f"{s.threshold:.3f}" for s in sweeps)
        )
    for detector in PUBLISHED:
        lines.append(
            f"{'published ' + detector:40s}" + _row([final[detector][p.name] for p in profiles])
        )
    print("\n".join(lines))
    return 0


def _row(values: Sequence[float]) -> str:
    return "".join(f"{v:10.1f}" for v in values)


def _counts(algorithm: str, outcomes: Sequence[Outcome]) -> None:
    tp = sum(o.tp for o in outcomes)
    fn = sum(o.fn for o in outcomes)
    fp = sum(o.fp for o in outcomes)
    print(f"  {algorithm} production flag: windows hit {tp}, missed {fn}; false positives {fp}")


if __name__ == "__main__":
    raise SystemExit(main())
