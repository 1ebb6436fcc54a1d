"""The command line, run as a user runs it: a separate process per command."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from gatewatch.cli.main import COMMANDS, build_parser, command_in

NOW = time.time()


def gatewatch(
    *args: str,
    data_dir: Path,
    input_bytes: bytes | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    env["GATEWATCH_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "gatewatch", *args],
        input=input_bytes.decode() if input_bytes is not None else None,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subcommand_paths() -> list[list[str]]:
    parser = build_parser()
    paths: list[list[str]] = []

    def walk(p: object, prefix: list[str]) -> None:
        for action in getattr(p, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    paths.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(parser, [])
    return paths


@pytest.mark.parametrize("path", [[], *subcommand_paths()], ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*path, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "usage: gatewatch" in out
    assert len(out.splitlines()) >= 3


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["simulate", "--count", "3"], "simulate"),
        (["-c", "users.toml", "-v", "users", "list"], "users"),  # a value is not a command
        (["--config", "db", "db", "stats"], "db"),
        (["--config=x.toml", "query", "actor"], "query"),
        (["bogus"], None),  # argparse names the choices
        (["--help"], None),
        ([], None),
    ],
)
def test_only_the_command_run_is_built(argv: list[str], command: str | None) -> None:
    assert command_in(argv) == command
    parser = build_parser(command)
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(commands.choices) == ([command] if command else list(COMMANDS))


def canonical_line(i: int, **fields: object) -> bytes:
    event: dict[str, object] = {
        "ts": int((NOW - 600 + i) * 1000),
        "client_ip": "198.51.100.7",
        "method": "POST",
        "path": "/api/v1/auth/login",
        "status": 401 if i % 2 else 200,
        "user": f"user{i % 3}",
    }
    event.update(fields)
    return orjson.dumps(event)


def test_ingest_then_query(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [canonical_line(i) for i in range(40)] + [b"{broken", b"\xff\xfe"]
    log.write_bytes(b"\n".join(lines) + b"\n")
    done = gatewatch("ingest", "--input", str(log), data_dir=tmp_path / "d")
    assert done.returncode == 0, done.stderr
    assert (
        "42 lines" in done.stdout and "40 events" in done.stdout and "2 dead letters" in done.stdout
    )
    stats = gatewatch("db", "stats", data_dir=tmp_path / "d")
    assert "events" in stats.stdout and " 40" in stats.stdout
    actor = gatewatch(
        "query", "actor", "--ip", "198.51.100.7", "--since", "1h", data_dir=tmp_path / "d"
    )
    assert actor.returncode == 0, actor.stderr
    assert "(40 requests)" in actor.stdout
    failed = gatewatch(
        "query", "failed-auth", "--since", "1h", "--bucket", "1h", data_dir=tmp_path / "d"
    )
    assert "401:" in failed.stdout
    talkers = gatewatch("query", "top-talkers", "--since", "1h", data_dir=tmp_path / "d")
    assert "/api/v1/auth/login" in talkers.stdout


def test_ingest_from_stdin(tmp_path: Path) -> None:
    data = b"\n".join(canonical_line(i) for i in range(5)) + b"\n"
    done = gatewatch(
        "ingest", "--input", "-", "--format", "canonical", data_dir=tmp_path / "d", input_bytes=data
    )
    assert done.returncode == 0, done.stderr
    assert "5 events" in done.stdout


def test_bad_config_exits_2_naming_file_key_and_reason(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[storage]\nbatch_max_rows = "lots"\n')
    done = gatewatch("config", "check", str(config), data_dir=tmp_path / "d")
    assert done.returncode == 2
    assert f"{config}: storage.batch_max_rows:" in done.stderr
    assert "Traceback" not in done.stderr
    again = gatewatch(
        "--config", str(config), "ingest", "--input", "-", data_dir=tmp_path / "d", input_bytes=b""
    )
    assert again.returncode == 2 and "storage.batch_max_rows" in again.stderr


def test_config_check_ok_and_show_masks_secrets(tmp_path: Path) -> None:
    config = tmp_path / "good.toml"
    config.write_text('[storage]\npassword = "hunter2-secret"\n')
    assert gatewatch("config", "check", str(config), data_dir=tmp_path / "d").returncode == 0
    shown = gatewatch("--config", str(config), "config", "show", data_dir=tmp_path / "d")
    assert shown.returncode == 0
    assert "hunter2" not in shown.stdout and "**********" in shown.stdout


def test_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    done = gatewatch(
        "ingest", "--input", "-", "--format", "syslog", data_dir=tmp_path / "d", input_bytes=b""
    )
    assert done.returncode != 0
    assert "unknown log format 'syslog'" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    done = gatewatch("ingest", "--input", str(tmp_path / "nope.log"), data_dir=tmp_path / "d")
    assert done.returncode == 1
    assert "nope.log" in done.stderr and "Traceback" not in done.stderr


def test_follow_stores_appended_lines_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "live.log"
    log.write_bytes(b"\n".join(canonical_line(i) for i in range(10)) + b"\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    env["GATEWATCH_DATA_DIR"] = str(tmp_path / "d")
    env["GATEWATCH_STORAGE__BATCH_MAX_SECONDS"] = "0.2"
    port = free_port()
    env["GATEWATCH_METRICS__PORT"] = str(port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatewatch", "ingest", "--input", str(log), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        time.sleep(3)
        with log.open("ab") as fh:
            fh.write(b"\n".join(canonical_line(i) for i in range(10, 25)) + b"\n")
            fh.write(b"{not json\n")
        time.sleep(3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            metrics = page.read().decode()
        assert 'gatewatch_records_consumed_total{source="' in metrics
        assert "gatewatch_events_stored_total 25.0" in metrics
        proc.send_signal(__import__("signal").SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "26 lines" in out and "25 events" in out and "1 dead letters" in out
    stats = gatewatch("db", "stats", data_dir=tmp_path / "d")
    assert " 25" in stats.stdout


def test_simulate_is_deterministic_and_ingestible(tmp_path: Path) -> None:
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 3600))
    args = ("simulate", "--count", "300", "--format", "kong", "--seed", "3", "--start", start)
    first = gatewatch(*args, data_dir=tmp_path / "d")
    second = gatewatch(*args, data_dir=tmp_path / "d")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert len(first.stdout.splitlines()) == 300
    other = gatewatch(
        "simulate",
        "--count",
        "300",
        "--format",
        "kong",
        "--seed",
        "4",
        "--start",
        start,
        data_dir=tmp_path / "d",
    )
    assert other.stdout != first.stdout

    out = tmp_path / "sim.log"
    written = gatewatch(
        "simulate",
        "--count",
        "300",
        "--format",
        "traefik",
        "--output",
        str(out),
        data_dir=tmp_path / "d",
    )
    assert written.returncode == 0 and "wrote 300 traefik lines" in written.stderr
    done = gatewatch("ingest", "--input", str(out), data_dir=tmp_path / "d")
    assert "300 events, 0 dead letters" in done.stdout, done.stdout + done.stderr
