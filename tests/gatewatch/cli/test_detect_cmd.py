"""``gatewatch detect`` end to end, in a subprocess, as users and the scorer run it."""

import time
from pathlib import Path

import orjson

from tests.gatewatch.cli.test_cli import gatewatch


def _lines(base_ms: int = 1_710_230_400_000) -> bytes:
    lines = []
    for i in range(30):
        cleartext = i % 10 == 3  # three logins over plain HTTP from one client
        lines.append(
            {
                "request_id": f"req-{i}",
                "ts": base_ms + i * 1000,
                "client_ip": "192.0.2.77" if cleartext else f"198.51.100.{i}",
                "method": "POST" if cleartext else "GET",
                "scheme": "http" if cleartext else "https",
                "path": "/api/v1/auth/login" if cleartext else "/api/v1/products",
                "status": 200,
                "user": "alice" if cleartext else "",
                "tls_version": "" if cleartext else "TLSv1.3",
            }
        )
    return b"".join(orjson.dumps(line) + b"\n" for line in lines) + b"not json\n"


def test_writes_findings_with_every_evidence_id_deterministically(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(_lines())
    outputs = []
    for name in ("a.jsonl", "b.jsonl"):
        done = gatewatch(
            "detect",
            "-i",
            str(source),
            "-f",
            "canonical",
            "-o",
            str(tmp_path / name),
            data_dir=tmp_path / "data",
        )
        assert done.returncode == 0, done.stderr
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    (finding,) = [orjson.loads(line) for line in outputs[0].splitlines()]
    assert finding["kind"] == "insecure_transport" and finding["entity"] == "192.0.2.77"
    assert finding["evidence"] == ["req-3", "req-13", "req-23"]
    assert finding["first_ts"] == "2024-03-12T08:00:03.000Z"
    assert finding["detected_ts"] == finding["first_ts"]
    assert finding["owasp"] == "API8:2023" and finding["mitre"] == "T1557"
    assert "31 lines, 30 events, 1 unparseable; 1 findings" in done.stderr


def test_bad_detector_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text("[detection.detectors.insecure_transport]\nepisode_quiet_s = 0\n")
    source = tmp_path / "in.jsonl"
    source.write_bytes(_lines())
    done = gatewatch(
        "--config",
        str(config),
        "detect",
        "-i",
        str(source),
        "-o",
        "-",
        data_dir=tmp_path / "data",
    )
    assert done.returncode == 2
    assert "insecure_transport.episode_quiet_s" in done.stderr


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    done = gatewatch(
        "detect", "-i", str(tmp_path / "nope.jsonl"), "-o", "-", data_dir=tmp_path / "data"
    )
    assert done.returncode != 0 and "nope.jsonl" in done.stderr
    assert "Traceback" not in done.stderr


def test_ingest_runs_the_detectors_and_findings_are_queryable(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    # Recent timestamps: ingest keeps events only within the retention period.
    source.write_bytes(_lines(round(time.time() * 1000) - 60_000))
    done = gatewatch("ingest", "-i", str(source), "-f", "canonical", data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr
    assert "finding versions" in done.stdout
    found = gatewatch("query", "findings", "--since", "1h", "--json", data_dir=tmp_path / "d")
    assert found.returncode == 0, found.stderr
    (row,) = [orjson.loads(line) for line in found.stdout.splitlines()]
    assert row["kind"] == "insecure_transport" and row["entity"] == "192.0.2.77"
    assert row["evidence_count"] == 3 and row["owasp"] == "API8:2023"
    bad = gatewatch("query", "findings", "--kind", "nope", data_dir=tmp_path / "d")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
