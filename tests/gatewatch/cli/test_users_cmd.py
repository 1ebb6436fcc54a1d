"""``gatewatch users``: accounts and API tokens from the command line, as an operator
runs it; the dashboard's store sees them."""

from __future__ import annotations

from pathlib import Path

from dashboard.auth.store import AuthStore, Role
from tests.gatewatch.cli.test_cli import gatewatch

PASSWORD = b"a long enough passphrase\n"


def test_add_list_token_and_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    added = gatewatch("users", "add", "ana", "--role", "analyst", "--password-stdin",
                      data_dir=data, input_bytes=PASSWORD)  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = gatewatch("users", "list", data_dir=data)
    assert listed.stdout.split() == ["ana", "analyst"]
    made = gatewatch("users", "token", "ana", "--scope", "read", "--days", "7",
                     "--label", "grafana", data_dir=data)  # fmt: skip
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("gwt_") and "shown once" in made.stderr
    store = AuthStore(data / "dashboard-auth.sqlite")
    token = store.verify_token(secret)
    assert token is not None and token.role is Role.VIEWER and token.label == "grafana"
    assert store.authenticate("ana", PASSWORD.decode().strip()) is not None
    tokens = gatewatch("users", "tokens", data_dir=data)
    assert token.id in tokens.stdout and secret not in tokens.stdout
    assert gatewatch("users", "revoke", token.id, data_dir=data).returncode == 0
    assert store.verify_token(secret) is None


def test_bad_requests_are_clear_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    short = gatewatch("users", "add", "bob", "--password-stdin", data_dir=data,
                      input_bytes=b"short\n")  # fmt: skip
    assert short.returncode == 2 and "12" in short.stderr
    gatewatch("users", "add", "vic", "--password-stdin", data_dir=data, input_bytes=PASSWORD)
    above = gatewatch("users", "token", "vic", "--scope", "admin", data_dir=data)
    assert above.returncode == 2 and "gatewatch users:" in above.stderr
    unknown = gatewatch("users", "role", "nobody", "admin", data_dir=data)
    assert unknown.returncode == 2 and "nobody" in unknown.stderr
