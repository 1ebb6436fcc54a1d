"""``make demo`` runs gatewatch.demo; a short run proves the whole path works."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gatewatch.demo",
            "--dir",
            str(tmp_path / "demo"),
            "--seconds",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "lines of kong traffic" in out and "lines of envoy traffic" in out
    assert "4 dead letters" in out  # the four broken lines the demo adds
    assert "busiest clients on the busiest routes" in out
    assert "query actor --ip" in out
    found = re.search(r"findings: (\d+) attack episodes detected", out)
    assert found and int(found.group(1)) >= 5, out
    assert "brute_force" in out
    assert (tmp_path / "demo" / "clickhouse").is_dir()
