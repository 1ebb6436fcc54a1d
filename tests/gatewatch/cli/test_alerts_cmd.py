"""``gatewatch ingest`` raises alerts end to end; ``gatewatch alerts`` manages them.

Subprocesses, as users run them: simulated attacks in, alerts out through the file
channel, alert versions and every delivery attempt in ClickHouse, suppressions honoured.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from tests.gatewatch.cli.test_cli import gatewatch

# Recent traffic: events older than the retention period are dead-lettered.
START = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() - 3 * 3600))


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "gw.toml"
    config.write_text(
        f"""
[alerts]
risk_threshold = 20  # a medium finding (a scan) alerts on its own

[alerts.channels.file]
url = "file:{tmp_path / "alerts.jsonl"}"

[[alerts.routes]]
channels = ["file"]
{extra}
"""
    )
    return config


def _attack_log(tmp_path: Path) -> Path:
    log = tmp_path / "traffic.jsonl"
    done = gatewatch(
        "simulate", "--attacks", "brute_force,endpoint_scanning", "--duration", "300",
        "--seed", "3", "--start", START, "-o", str(log),
        data_dir=tmp_path / "data",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return log


def _ingest(tmp_path: Path, config: Path, log: Path) -> None:
    done = gatewatch(
        "--config", str(config), "ingest", "--input", str(log), "--format", "canonical",
        data_dir=tmp_path / "data",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _sent(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "alerts.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_attacks_become_alerts_stored_with_their_delivery_trail(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _ingest(tmp_path, config, _attack_log(tmp_path))
    sent = _sent(tmp_path)
    titles = [message["title"] for message in sent]
    assert any("brute_force" in title for title in titles), titles
    assert any("endpoint_scanning" in title for title in titles), titles
    # One alert per attacking actor, updated rather than repeated.
    listed = gatewatch(
        "--config", str(config), "alerts", "list", "--since", "3000d", "--json",
        data_dir=tmp_path / "data",
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    alerts = [orjson.loads(line) for line in listed.stdout.splitlines()]
    actors = [(a["actor_type"], a["actor"]) for a in alerts]
    assert alerts and len(actors) == len(set(actors))
    trail = gatewatch(
        "--config", str(config), "alerts", "deliveries", alerts[0]["id"],
        data_dir=tmp_path / "data",
    )  # fmt: skip
    assert trail.returncode == 0, trail.stderr
    assert " file " in trail.stdout and "attempt 1" in trail.stdout and " ok" in trail.stdout


def test_a_suppressed_actor_raises_no_alert(tmp_path: Path) -> None:
    config = _config(tmp_path)
    log = _attack_log(tmp_path)
    _ingest(tmp_path, config, log)
    scanners = {m["title"].rsplit(" ip ", 1)[-1].split()[0] for m in _sent(tmp_path)
                if "endpoint_scanning" in m["title"] and " ip " in m["title"]}  # fmt: skip
    assert scanners
    (tmp_path / "alerts.jsonl").unlink()
    for ip in scanners:
        done = gatewatch(
            "--config", str(config), "alerts", "suppress", "--entity", ip, "--for", "1d",
            "--reason", "authorised scan, ticket SOC-1",
            data_dir=tmp_path / "data",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    listed = gatewatch(
        "--config", str(config), "alerts", "suppressions", data_dir=tmp_path / "data"
    )
    assert "authorised scan, ticket SOC-1" in listed.stdout
    # The same traffic again: the scanners' findings are stored but raise no alert.
    _ingest(tmp_path, config, log)
    titles = [m["title"] for m in _sent(tmp_path)]
    assert not [t for t in titles for ip in scanners if ip in t], titles


def test_bad_suppression_and_alert_config_are_clear_errors(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = gatewatch(
        "--config", str(config), "alerts", "suppress", "--for", "1d", "--reason", "x",
        data_dir=tmp_path / "data",
    )  # fmt: skip
    assert done.returncode == 2 and "criterion" in done.stderr.lower()
    bad = _config(tmp_path, 'min_severity = "urgent"')
    done = gatewatch("--config", str(bad), "alerts", "suppressions", data_dir=tmp_path / "data")
    assert done.returncode == 2 and "alerts.routes.0.min_severity" in done.stderr
    secret = tmp_path / "secret.toml"
    secret.write_text('[alerts.channels.chat]\nurl = "json://hunter2@127.0.0.1:9/x"\n'
                      '[[alerts.routes]]\nchannels = ["nope"]\n')  # fmt: skip
    done = gatewatch("--config", str(secret), "alerts", "suppressions", data_dir=tmp_path / "data")
    assert done.returncode == 2 and "unknown channels ['nope']" in done.stderr
    assert "hunter2" not in done.stderr


def test_alerts_test_sends_a_sample_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "sample.jsonl"
    done = gatewatch("alerts", "test", f"file:{target}", data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    (message,) = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert "CRITICAL" in message["title"] and "203.0.113.9" in message["title"]
    assert "T1110.004" in message["body"]
