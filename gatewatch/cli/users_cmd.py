"""``gatewatch users``: dashboard accounts (roles viewer, analyst, admin) and API
tokens. Passwords are read from the terminal (or one line of stdin with
``--password-stdin``), never from the command line; a token is shown once."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from dashboard.auth.store import AuthStore, Role
from dashboard.context import auth_store
from gatewatch.cli.common import settings_from

_ROLES = [role.value for role in Role]
_SCOPES = ("read", "triage", "admin")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "users",
        help="dashboard users and API tokens",
        description="Manage who may use the dashboard and the JSON API. Stored hashed in "
        "DATA_DIR/dashboard-auth.sqlite; safe to run while the dashboard is serving.",
    )
    sub = parser.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", choices=_ROLES, default="viewer")
    add.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    passwd = sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    role = sub.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=_ROLES)
    for action in ("disable", "enable", "delete"):
        sub.add_parser(action, help=f"{action} a user").add_argument("name")
    sub.add_parser("list", help="the users and their roles")

    token = sub.add_parser("token", help="create an API token (shown once)")
    token.add_argument("name", help="the user the token acts as")
    token.add_argument("--scope", choices=_SCOPES, default="read")
    token.add_argument("--days", type=float, default=90.0, help="lifetime (at most 365)")
    token.add_argument("--label", default="", help="what it is for")
    sub.add_parser("tokens", help="the API tokens (never their secrets)")
    revoke = sub.add_parser("revoke", help="revoke an API token")
    revoke.add_argument("token_id")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    store = auth_store(settings_from(args))
    try:
        return _act(args, store)
    except ValueError as exc:
        print(f"gatewatch users: {exc}", file=sys.stderr)
        return 2


def _act(args: argparse.Namespace, store: AuthStore) -> int:
    command = args.users_command
    if command == "add":
        store.add_user(args.name, _password(args), Role(args.role))
        print(f"added {args.name} ({args.role})", file=sys.stderr)
    elif command == "passwd":
        store.set_password(args.name, _password(args))
    elif command == "role":
        store.set_role(args.name, Role(args.role))
    elif command == "disable":
        store.disable_user(args.name)
    elif command == "enable":
        store.enable_user(args.name)
    elif command == "delete":
        store.delete_user(args.name)
    elif command == "list":
        for user in store.list_users():
            state = " (disabled)" if user.disabled else ""
            print(f"{user.name}  {user.role.value}{state}")
    elif command == "token":
        secret, token = store.create_token(
            args.name, scopes=frozenset({args.scope}), expires_in_s=args.days * 86_400,
            label=args.label,
        )  # fmt: skip
        print(secret)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(token.expires_ts))
        print(f"token {token.id} for {args.name}, scope {args.scope}, until {expires}: "
              "shown once, store it now", file=sys.stderr)  # fmt: skip
    elif command == "tokens":
        for token in store.list_tokens():
            expires = time.strftime("%Y-%m-%d", time.gmtime(token.expires_ts))
            state = " revoked" if token.revoked else ""
            print(f"{token.id}  {token.user}  {','.join(sorted(token.scopes))}  "
                  f"until {expires}{state}  {token.label}")  # fmt: skip
    else:
        store.revoke_token(args.token_id)
    return 0


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first
