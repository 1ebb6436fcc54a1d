"""``gatewatch simulate --attacks ... --labels DIR``, run as a user runs it."""

from __future__ import annotations

from pathlib import Path

import orjson

from ingest.simulator.attacks import ATTACKS
from tests.gatewatch.cli.test_cli import gatewatch

BASE = ("simulate", "--duration", "120", "--seed", "3", "--start", "2024-03-12T08:00:00Z")
FILES = ("canonical.jsonl", "labels.jsonl", "attacks.json")


def test_labels_every_kind_deterministically(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        done = gatewatch(
            *BASE, "--attacks", "all", "--labels", str(tmp_path / name), data_dir=tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""  # with --labels and no --output: no log lines
        assert "labelled " in done.stderr and " episodes) in " in done.stderr
        outputs.append([(tmp_path / name / file).read_bytes() for file in FILES])
    assert outputs[0] == outputs[1]
    attacks = orjson.loads(outputs[0][2])
    assert {a["kind"] for a in attacks} == set(ATTACKS)
    assert len(attacks) == sum(len(cls.variants) for cls in ATTACKS.values())
    labels = [orjson.loads(line) for line in outputs[0][1].splitlines()]
    assert {label["attack_id"] for label in labels} == {a["attack_id"] for a in attacks}


def test_labels_with_a_log_file_in_another_format(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    done = gatewatch(
        *BASE,
        "--attacks",
        "bola,brute_force",
        "--attack-count",
        "1",
        "--format",
        "nginx",
        "-o",
        str(log),
        "--labels",
        str(tmp_path / "set"),
        data_dir=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    events = (tmp_path / "set" / "canonical.jsonl").read_bytes().splitlines()
    assert len(log.read_bytes().splitlines()) == len(events)
    attacks = orjson.loads((tmp_path / "set" / "attacks.json").read_bytes())
    assert sorted(a["attack_id"] for a in attacks) == ["bola-1", "brute_force-1"]


def test_attacks_without_labels_join_the_normal_output(tmp_path: Path) -> None:
    plain = gatewatch(*BASE, data_dir=tmp_path)
    attacked = gatewatch(*BASE, "--attacks", "endpoint_scanning", "--no-traps", data_dir=tmp_path)
    assert plain.returncode == attacked.returncode == 0, attacked.stderr
    before, after = plain.stdout.splitlines(), attacked.stdout.splitlines()
    assert len(after) > len(before) and set(before) <= set(after)
    assert '"path":"/.env"' in attacked.stdout or '"path":"/api/v1/debug"' in attacked.stdout


def test_bad_attack_options_are_usage_errors(tmp_path: Path) -> None:
    unknown = gatewatch(*BASE, "--attacks", "bola,sqli", data_dir=tmp_path)
    assert unknown.returncode == 2 and "unknown attack kind 'sqli'" in unknown.stderr
    lonely = gatewatch(*BASE, "--attack-count", "2", data_dir=tmp_path)
    assert lonely.returncode == 2 and "--attack-count needs --attacks" in lonely.stderr


def test_help_explains_the_attack_options(tmp_path: Path) -> None:
    done = gatewatch("simulate", "--help", data_dir=tmp_path)
    assert done.returncode == 0
    for text in ("--attacks", "--attack-count", "--labels", "--no-traps", "attacks.json"):
        assert text in done.stdout
    assert all(kind in done.stdout for kind in ATTACKS)
