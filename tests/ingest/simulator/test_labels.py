"""The label directory: events, labels and attacks in the evaluation format."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from ingest.simulator.attacks import ATTACKS, build_episodes
from ingest.simulator.labels import LabelWriter, rfc3339_ms, write_label_dir
from ingest.simulator.render import render_canonical
from ingest.simulator.request import SimRequest
from ingest.simulator.traffic import SimulationConfig, generate
from tests.ingest.simulator.conftest import quiet

CONFIG = quiet(seed=31)
SCORER = Path(__file__).resolve().parents[4] / "shared" / "eval" / "score.py"


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SimRequest]]:
    directory = tmp_path_factory.mktemp("labels")
    episodes = build_episodes(CONFIG, ATTACKS)
    requests: list[SimRequest] = []
    with LabelWriter(directory, episodes) as writer:
        requests.extend(writer.record(generate(CONFIG, episodes)))
    assert writer.summary() == (
        len(requests),
        sum(bool(r.attack_id) for r in requests),
        len({r.attack_id for r in requests if r.attack_id}),
    )
    return directory, requests


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_canonical_holds_every_request_as_the_renderer_writes_it(
    labelled: tuple[Path, list[SimRequest]],
) -> None:
    directory, requests = labelled
    data = (directory / "canonical.jsonl").read_bytes()
    assert data.endswith(b"\n")
    assert data.splitlines() == [render_canonical(r) for r in requests]


def test_labels_list_exactly_the_attack_requests(labelled: tuple[Path, list[SimRequest]]) -> None:
    directory, requests = labelled
    labels = _jsonl(directory / "labels.jsonl")
    assert all(set(label) == {"request_id", "attack_id"} for label in labels)
    expected = [(r.request_id, r.attack_id) for r in requests if r.attack_id]
    assert [(label["request_id"], label["attack_id"]) for label in labels] == expected
    assert len(expected) > 1000


def test_attacks_bracket_their_requests(labelled: tuple[Path, list[SimRequest]]) -> None:
    directory, requests = labelled
    attacks = orjson.loads((directory / "attacks.json").read_bytes())
    assert len(attacks) == sum(len(cls.variants) for cls in ATTACKS.values())
    canonical_ts = {
        line["request_id"]: _epoch(str(line["ts"]))
        for line in _jsonl(directory / "canonical.jsonl")
    }
    starts = []
    for attack in attacks:
        assert {"attack_id", "accepted_kinds", "start", "end"} <= set(attack)
        assert attack["accepted_kinds"] == list(ATTACKS[attack["kind"]].accepted_kinds)
        mine = [r for r in requests if r.attack_id == attack["attack_id"]]
        assert attack["requests"] == len(mine)
        start, end = _epoch(attack["start"]), _epoch(attack["end"])
        for request in mine:
            assert start <= request.ts <= end
            assert start <= canonical_ts[request.request_id] <= end
        assert end - start < 0.002 + mine[-1].ts - mine[0].ts
        starts.append(start)
    assert starts == sorted(starts)


def test_an_episode_cut_off_by_the_run_is_left_out(tmp_path: Path) -> None:
    config = SimulationConfig(seed=5, duration_s=300.0)
    episodes = build_episodes(config, ["scraping"])
    cut = SimulationConfig(seed=5, duration_s=episodes[0].start_ts - config.start_ts - 1.0)
    summary = write_label_dir(generate(cut, episodes), tmp_path, episodes)
    assert summary.attacks == 0 and summary.attack_requests == 0
    assert orjson.loads((tmp_path / "attacks.json").read_bytes()) == []
    assert (tmp_path / "labels.jsonl").read_bytes() == b""


def test_a_reader_that_stops_early_leaves_consistent_files(tmp_path: Path) -> None:
    episodes = build_episodes(CONFIG, ["brute_force"])
    with LabelWriter(tmp_path, episodes) as writer:
        stream = writer.record(generate(CONFIG, episodes))
        taken = [next(stream) for _ in range(5000)]
    lines = (tmp_path / "canonical.jsonl").read_bytes().splitlines()
    assert lines == [render_canonical(r) for r in taken]
    labelled = {str(label["request_id"]) for label in _jsonl(tmp_path / "labels.jsonl")}
    assert labelled == {r.request_id for r in taken if r.attack_id}


def test_a_request_of_an_unknown_attack_is_an_error(tmp_path: Path) -> None:
    episodes = build_episodes(CONFIG, ["bola"])
    with pytest.raises(ValueError, match="unknown attack 'bola-"), LabelWriter(tmp_path, []) as w:
        for _ in w.record(generate(CONFIG, episodes)):
            pass
    assert not (tmp_path / "attacks.json").exists()


def test_rfc3339_rounding() -> None:
    assert rfc3339_ms(1710230400.0) == "2024-03-12T08:00:00.000Z"
    assert rfc3339_ms(1710230400.9996, up=True) == "2024-03-12T08:00:01.000Z"


@pytest.mark.skipif(not SCORER.is_file(), reason="the shared scorer is absent")
def test_the_shared_scorer_reads_the_directory(
    labelled: tuple[Path, list[SimRequest]], tmp_path: Path
) -> None:
    directory, requests = labelled
    attacks = orjson.loads((directory / "attacks.json").read_bytes())
    findings = []
    for attack in attacks:
        first = next(r for r in requests if r.attack_id == attack["attack_id"])
        findings.append(
            {
                "kind": attack["accepted_kinds"][0],
                "evidence": [first.request_id],
                "detected_ts": attack["end"],
            }
        )
    benign = next(r for r in requests if not r.attack_id)
    findings.append(
        {"kind": "anomaly", "evidence": [benign.request_id], "detected_ts": attack["end"]}
    )
    path = tmp_path / "findings.jsonl"
    path.write_bytes(b"".join(orjson.dumps(f) + b"\n" for f in findings))
    done = subprocess.run(
        [sys.executable, str(SCORER), str(directory), str(path), "--json"],
        capture_output=True,
        check=True,
    )
    summary = orjson.loads(done.stdout)["summary"]
    assert summary["attacks_detected"] == summary["attacks"] == len(attacks)
    assert summary["false_findings"] == 1
