"""Users and API tokens in SQLite: validation, authentication, token lifecycle and
role capping, sharing one file between instances, and what reaches the disk."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import dashboard.auth.store as store_module
from dashboard.auth import passwords
from dashboard.auth.passwords import ScryptParams
from dashboard.auth.store import (
    MAX_TOKEN_LIFETIME_S,
    AuthStore,
    Role,
    Token,
    User,
    effective_role,
)

FAST = ScryptParams(n=2**4)
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "tr0ub4dor & three more words"
HOUR = 3600.0
T0 = 1_700_000_000.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "auth.sqlite"


@pytest.fixture
def users(path: Path) -> AuthStore:
    store = AuthStore(path, hashing=FAST)
    store.add_user("ada", PASSWORD, Role.ADMIN)
    store.add_user("ana", PASSWORD, Role.ANALYST)
    store.add_user("vic", PASSWORD, Role.VIEWER)
    return store


def _user(users: AuthStore, name: str) -> User:
    user = users.get_user(name)
    assert user is not None
    return user


def _token(users: AuthStore, user: str = "ana", scope: str = "read") -> tuple[str, Token]:
    return users.create_token(
        user, scopes=frozenset({scope}), expires_in_s=HOUR, label="test", now=T0
    )


# Roles


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.ANALYST, False),
        (Role.VIEWER, Role.ADMIN, False),
        (Role.ANALYST, Role.VIEWER, True),
        (Role.ANALYST, Role.ANALYST, True),
        (Role.ANALYST, Role.ADMIN, False),
        (Role.ADMIN, Role.VIEWER, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_roles_allow_by_rank(role: Role, required: Role, allowed: bool) -> None:
    assert role.allows(required) is allowed


# Users


def test_users_are_stored_and_listed_without_showing_their_hash(users: AuthStore) -> None:
    ana = users.get_user("ana")
    assert ana is not None
    assert (ana.name, ana.role, ana.disabled) == ("ana", Role.ANALYST, False)
    assert ana.password_hash.startswith("scrypt$16$")
    assert "scrypt" not in repr(ana) and "password_hash" not in repr(ana)
    assert [(u.name, u.role) for u in users.list_users()] == [
        ("ada", Role.ADMIN),
        ("ana", Role.ANALYST),
        ("vic", Role.VIEWER),
    ]
    assert users.get_user("nobody") is None
    assert users.get_user("not a name!") is None


@pytest.mark.parametrize(
    ("name", "password", "problem"),
    [
        ("", PASSWORD, "user name"),
        ("a" * 65, PASSWORD, "user name"),
        ("ana smith", PASSWORD, "user name"),
        ("ana\n", PASSWORD, "user name"),
        ("ana/../x", PASSWORD, "user name"),
        ("\u00e4na", PASSWORD, "user name"),
        ("ana", PASSWORD, "already exists"),
        ("ANA", PASSWORD, "already exists"),  # names are unique regardless of case
        ("newbie", "short", "at least 12"),
        ("newbie", "x" * 20, "repeat"),
    ],
)
def test_add_user_refuses(users: AuthStore, name: str, password: str, problem: str) -> None:
    before = users.list_users()
    with pytest.raises(ValueError, match=problem):
        users.add_user(name, password, Role.VIEWER)
    assert users.list_users() == before


def test_names_may_hold_emails_and_dots() -> None:
    assert store_module._NAME.fullmatch("ana.smith-2_x@soc.example.org")
    assert store_module._NAME.fullmatch("a" * 64)


@pytest.mark.parametrize(
    ("name", "password", "authenticated"),
    [
        ("ana", PASSWORD, "ana"),
        ("ANA", PASSWORD, "ana"),  # the stored spelling comes back
        ("ana", NEW_PASSWORD, None),
        ("ana", "", None),
        ("ana", PASSWORD.upper(), None),
        ("nobody", PASSWORD, None),
        ("", PASSWORD, None),
        ("a" * 1000, PASSWORD, None),
    ],
)
def test_authenticate(
    users: AuthStore, name: str, password: str, authenticated: str | None
) -> None:
    user = users.authenticate(name, password)
    assert (user.name if user else None) == authenticated


def test_an_unknown_user_costs_one_verification_like_a_known_one(
    users: AuthStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real = passwords.verify_password

    def spy(password: str, encoded: str) -> bool:
        verified.append(encoded)
        return real(password, encoded)

    monkeypatch.setattr(store_module, "verify_password", spy)
    for name in ("nobody", "ana", "bad name!"):
        verified.clear()
        assert users.authenticate(name, "wrong password") is None
        assert len(verified) == 1 and verified[0].startswith("scrypt$16$8$1$"), name


def test_a_disabled_user_cannot_log_in_until_enabled(users: AuthStore) -> None:
    users.disable_user("ana")
    assert _user(users, "ana").disabled
    assert users.authenticate("ana", PASSWORD) is None
    users.enable_user("ana")
    assert users.authenticate("ana", PASSWORD) is not None


def test_set_password_replaces_the_old_one_and_applies_the_policy(users: AuthStore) -> None:
    users.set_password("ana", NEW_PASSWORD)
    assert users.authenticate("ana", PASSWORD) is None
    assert users.authenticate("ana", NEW_PASSWORD) is not None
    with pytest.raises(ValueError, match="at least 12"):
        users.set_password("ana", "tiny")
    assert users.authenticate("ana", NEW_PASSWORD) is not None


def test_set_role(users: AuthStore) -> None:
    users.set_role("vic", Role.ANALYST)
    assert _user(users, "vic").role is Role.ANALYST


@pytest.mark.parametrize(
    "act",
    [
        lambda s: s.set_password("nobody", NEW_PASSWORD),
        lambda s: s.set_role("nobody", Role.ADMIN),
        lambda s: s.disable_user("nobody"),
        lambda s: s.enable_user("nobody"),
        lambda s: s.delete_user("nobody"),
    ],
)
def test_changing_an_unknown_user_is_an_error(
    users: AuthStore, act: Callable[[AuthStore], None]
) -> None:
    with pytest.raises(ValueError, match="no user named 'nobody'"):
        act(users)


def test_a_hash_made_with_other_parameters_is_upgraded_at_login(path: Path) -> None:
    AuthStore(path, hashing=FAST).add_user("ana", PASSWORD, Role.ANALYST)
    stronger = AuthStore(path, hashing=ScryptParams(n=2**6))
    assert stronger.authenticate("ana", "wrong password") is None
    assert _user(stronger, "ana").password_hash.startswith("scrypt$16$")
    user = stronger.authenticate("ana", PASSWORD)
    assert user is not None and user.password_hash.startswith("scrypt$64$")
    assert _user(stronger, "ana").password_hash == user.password_hash
    assert stronger.authenticate("ana", PASSWORD) is not None


# API tokens


def test_a_token_is_returned_once_and_verifies(users: AuthStore) -> None:
    plaintext, token = _token(users, "ana", "triage")
    prefix, token_id, secret = plaintext[:4], plaintext[4:20], plaintext[21:]
    assert (prefix, token_id, plaintext[20]) == ("gwt_", token.id, "_")
    assert len(secret) == 43  # 32 random bytes, base64url
    assert (token.user, token.scopes, token.label) == ("ana", frozenset({"triage"}), "test")
    assert (token.created_ts, token.expires_ts, token.role) == (T0, T0 + HOUR, Role.ANALYST)
    verified = users.verify_token(plaintext, now=T0 + 1)
    assert verified is not None
    assert (verified.id, verified.user, verified.role) == (token.id, "ana", Role.ANALYST)
    [listed] = users.list_tokens("ana")
    assert secret not in repr(listed)
    assert users.list_tokens("vic") == []


def test_tokens_expire(users: AuthStore) -> None:
    plaintext, token = _token(users)
    assert users.verify_token(plaintext, now=token.expires_ts - 0.001) is not None
    assert users.verify_token(plaintext, now=token.expires_ts) is None
    assert users.verify_token(plaintext, now=token.expires_ts + 86_400) is None


def test_a_revoked_token_stays_revoked(users: AuthStore) -> None:
    plaintext, token = _token(users)
    other, _ = _token(users)
    users.revoke_token(token.id, now=T0 + 5)
    users.revoke_token(token.id, now=T0 + 50)  # revoking twice keeps the first time
    assert users.verify_token(plaintext, now=T0 + 10) is None
    assert users.verify_token(other, now=T0 + 10) is not None
    listed = {t.id: t for t in users.list_tokens()}
    assert listed[token.id].revoked and listed[token.id].revoked_ts == T0 + 5
    with pytest.raises(ValueError, match="no API token"):
        users.revoke_token("0123456789abcdef")


def test_tokens_of_a_disabled_or_deleted_user_do_not_verify(users: AuthStore) -> None:
    plaintext, _ = _token(users)
    users.disable_user("ana")
    assert users.verify_token(plaintext, now=T0) is None
    users.enable_user("ana")
    assert users.verify_token(plaintext, now=T0) is not None
    users.delete_user("ana")
    assert users.verify_token(plaintext, now=T0) is None
    assert users.list_tokens() == []
    users.add_user("ana", PASSWORD, Role.ANALYST)  # a new user with the old name
    assert users.verify_token(plaintext, now=T0) is None


@pytest.mark.parametrize(
    ("user_role", "scopes", "expected"),
    [
        (Role.ADMIN, {"read"}, Role.VIEWER),
        (Role.ADMIN, {"triage"}, Role.ANALYST),
        (Role.ADMIN, {"admin"}, Role.ADMIN),
        (Role.ADMIN, {"read", "triage"}, Role.ANALYST),
        (Role.ANALYST, {"read"}, Role.VIEWER),
        (Role.ANALYST, {"admin"}, Role.ANALYST),
        (Role.VIEWER, {"triage", "admin"}, Role.VIEWER),
    ],
)
def test_effective_role_is_the_lower_of_scope_and_user(
    user_role: Role, scopes: set[str], expected: Role
) -> None:
    assert effective_role(user_role, frozenset(scopes)) is expected


def test_a_token_never_grants_more_than_its_user_has_now(users: AuthStore) -> None:
    plaintext, token = _token(users, "ada", "admin")
    assert token.role is Role.ADMIN
    users.set_role("ada", Role.VIEWER)
    verified = users.verify_token(plaintext, now=T0)
    assert verified is not None and verified.role is Role.VIEWER
    assert users.list_tokens("ada")[0].role is Role.VIEWER
    users.set_role("ada", Role.ADMIN)
    verified = users.verify_token(plaintext, now=T0)
    assert verified is not None and verified.role is Role.ADMIN


@pytest.mark.parametrize(
    ("user", "scopes", "lifetime", "label", "problem"),
    [
        ("ana", set(), HOUR, "", "at least one scope"),
        ("ana", {"write"}, HOUR, "", "unknown scope write"),
        ("ana", {"read", "root"}, HOUR, "", "unknown scope root"),
        ("ana", {"read"}, 0.0, "", "more than 0 s"),
        ("ana", {"read"}, -HOUR, "", "more than 0 s"),
        ("ana", {"read"}, MAX_TOKEN_LIFETIME_S + 1, "", "365 days"),
        ("ana", {"read"}, float("inf"), "", "365 days"),
        ("ana", {"read"}, float("nan"), "", "365 days"),
        ("ana", {"read"}, HOUR, "\x1b[31mred", "printable"),
        ("ana", {"read"}, HOUR, "x" * 101, "printable"),
        ("nobody", {"read"}, HOUR, "", "no user named 'nobody'"),
        ("vic", {"triage"}, HOUR, "", "cannot have more"),
        ("ana", {"admin"}, HOUR, "", "cannot have more"),
    ],
)
def test_create_token_refuses(
    users: AuthStore, user: str, scopes: set[str], lifetime: float, label: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        users.create_token(user, scopes=frozenset(scopes), expires_in_s=lifetime, label=label)
    assert users.list_tokens() == []


def test_a_disabled_user_gets_no_new_token(users: AuthStore) -> None:
    users.disable_user("vic")
    with pytest.raises(ValueError, match="disabled"):
        _token(users, "vic")


def test_the_longest_lifetime_is_a_year(users: AuthStore) -> None:
    _, token = users.create_token(
        "vic", scopes=frozenset({"read"}), expires_in_s=MAX_TOKEN_LIFETIME_S, now=T0
    )
    assert token.expires_ts == T0 + 365 * 86_400


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def test_tampered_or_malformed_tokens_do_not_verify(users: AuthStore) -> None:
    plaintext, _ = _token(users)
    other, _ = _token(users)
    forged = [
        "",
        "gwt_",
        plaintext[:-1],
        plaintext + "A",
        plaintext.upper(),
        plaintext.replace("gwt_", "gwx_"),
        plaintext[:21] + other[21:],  # the id of one with the secret of another
        plaintext.replace("_", " ", 1),
        plaintext[:-1] + "\u00e9",
        " " + plaintext,
        "gwt_0123456789abcdef_" + plaintext[21:],  # an unknown id
        plaintext * 100,
        *(_flip(plaintext, i) for i in range(4, len(plaintext)) if plaintext[i] != "_"),
    ]
    for candidate in forged:
        assert users.verify_token(candidate, now=T0) is None, candidate
    assert users.verify_token(plaintext, now=T0) is not None


def test_last_use_is_recorded_at_most_once_a_minute(users: AuthStore) -> None:
    plaintext, token = _token(users)
    assert token.last_used_ts is None
    for now, recorded in ((T0 + 10, T0 + 10), (T0 + 40, T0 + 10), (T0 + 70, T0 + 70)):
        users.verify_token(plaintext, now=now)
        assert users.list_tokens()[0].last_used_ts == recorded


def test_last_use_is_best_effort_when_the_file_is_busy(users: AuthStore, path: Path) -> None:
    plaintext, _ = _token(users)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        verified = users.verify_token(plaintext, now=T0 + 10)
        assert verified is not None
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert users.list_tokens()[0].last_used_ts is None


# One file, many processes; what reaches the disk


def test_two_stores_on_one_file_see_each_others_changes(path: Path) -> None:
    server, cli = AuthStore(path, hashing=FAST), AuthStore(path, hashing=FAST)
    cli.add_user("ana", PASSWORD, Role.ANALYST)
    assert server.authenticate("ana", PASSWORD) is not None
    plaintext, token = server.create_token(
        "ana", scopes=frozenset({"read"}), expires_in_s=HOUR, now=T0
    )
    assert cli.verify_token(plaintext, now=T0) is not None
    cli.revoke_token(token.id)
    assert server.verify_token(plaintext, now=T0) is None
    cli.disable_user("ana")
    assert server.authenticate("ana", PASSWORD) is None
    assert AuthStore(path, hashing=FAST).get_user("ana") is not None  # and after a restart


def test_concurrent_writers_from_many_threads_and_stores(path: Path) -> None:
    stores = [AuthStore(path, hashing=FAST) for _ in range(4)]
    errors: list[BaseException] = []

    def add(worker: int) -> None:
        try:
            for i in range(10):
                stores[worker % 4].add_user(f"u{worker}-{i}", PASSWORD, Role.VIEWER)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(stores[0].list_users()) == 80


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)  # the file mode must not rely on the umask
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_the_file_and_its_wal_are_readable_by_the_owner_only(path: Path) -> None:
    users = AuthStore(path, hashing=FAST)
    reader = sqlite3.connect(path)  # keeps the -wal and -shm files in place
    try:
        reader.execute("SELECT count(*) FROM users").fetchone()
        users.add_user("ana", PASSWORD, Role.ANALYST)
        files = sorted(path.parent.glob(path.name + "*"))
        assert [f.name for f in files] == [path.name, path.name + "-shm", path.name + "-wal"]
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        reader.close()


def test_an_existing_file_readable_by_others_is_tightened(path: Path) -> None:
    path.touch()
    path.chmod(0o644)
    AuthStore(path, hashing=FAST)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_password_or_token_secret_reaches_the_disk(path: Path) -> None:
    users = AuthStore(path, hashing=FAST)
    users.add_user("ana", PASSWORD, Role.ANALYST)
    users.set_password("ana", NEW_PASSWORD)
    plaintext, _ = users.create_token("ana", scopes=frozenset({"read"}), expires_in_s=HOUR)
    users.verify_token(plaintext)
    secret = plaintext[21:]  # after "gwt_" and the 16-digit id
    on_disk = b"".join(f.read_bytes() for f in path.parent.glob(path.name + "*"))
    assert b"scrypt$16$8$1$" in on_disk  # the hash is there: these are the right bytes
    for plain in (PASSWORD, NEW_PASSWORD, plaintext, secret, secret[:16]):
        assert plain.encode() not in on_disk, plain
