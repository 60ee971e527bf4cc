"""The ``surveillance user`` and ``surveillance token`` commands: how the first admin, and
any user or token, comes to exist. There is no default account or key.

Passwords are read from standard input (one line), never from the command line, where
they would land in shell history and the process list. Each change is audited as done by
``cli`` from ``local``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from surveillance.auth.audit import AuditEntry, AuditLog
from surveillance.auth.errors import WeakPassword
from surveillance.auth.roles import Permission, Role
from surveillance.auth.store import AuthError, AuthStore
from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, database_url, upgrade

CLI_ACTOR = "cli"


def add_arguments(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    user = commands.add_parser("user", help="add, change, list and remove users")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="add a user; the password is read from stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--platform", action="append", default=[], help="limit to this platform")
    add.add_argument("--camera", action="append", default=[], help="limit to this camera")
    update = user_commands.add_parser("update", help="change a user's role or scope")
    update.add_argument("name")
    update.add_argument("--role", choices=[r.value for r in Role])
    update.add_argument("--platform", action="append", help="limit to this platform (repeat)")
    update.add_argument("--camera", action="append", help="limit to this camera (repeat)")
    update.add_argument("--all-cameras", action="store_true", help="lift every limit")
    passwd = user_commands.add_parser("passwd", help="set a password (from stdin)")
    passwd.add_argument("name")
    for verb in ("disable", "enable", "remove"):
        user_commands.add_parser(verb, help=f"{verb} a user").add_argument("name")
    user_commands.add_parser("list", help="list users, roles and scopes")

    token = commands.add_parser("token", help="create, list and revoke API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="print a new token for a user, once")
    create.add_argument("name", help="the user the token acts as")
    create.add_argument("--label", default="", help="what the token is for")
    create.add_argument(
        "--only",
        action="append",
        choices=[p.value for p in Permission],
        help="limit the token to this permission (repeat); e.g. system.read for metrics",
    )
    token_commands.add_parser("list", help="list tokens (never their secrets)")
    token_commands.add_parser("revoke", help="revoke a token").add_argument("id")

    for parser in (*user_commands.choices.values(), *token_commands.choices.values()):
        parser.add_argument("--config", required=True, help="YAML configuration file")


def read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise AuthError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


@contextmanager
def _store(config: AppConfig) -> Iterator[tuple[AuthStore, AuditLog]]:
    engine = create_db_engine(database_url(config))
    try:
        upgrade(engine)
        yield AuthStore(engine), AuditLog(engine)
    finally:
        engine.dispose()


def _check_scope(config: AppConfig, platforms: list[str], cameras: list[str]) -> None:
    unknown = Catalog.from_config(config).unknown(platforms, cameras)
    if unknown:
        raise AuthError(f"unknown {', '.join(unknown)}")


def run(args: argparse.Namespace, config: AppConfig) -> int:
    try:
        with _store(config) as (store, audit):
            if args.command == "user":
                return _user(args, config, store, audit)
            return _token(args, store, audit)
    except (AuthError, WeakPassword) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _record(audit: AuditLog, action: str, **detail: object) -> None:
    entry = AuditEntry(
        user=CLI_ACTOR, action=action, client="local", detail=detail, actor_is_user=False
    )
    audit.record(entry)


def _user(args: argparse.Namespace, config: AppConfig, store: AuthStore, audit: AuditLog) -> int:
    command = args.user_command
    if command == "list":
        for user in store.users():
            scope = ",".join(sorted(user.scope.platforms | user.scope.cameras)) or "all cameras"
            state = " (disabled)" if user.disabled else ""
            print(f"{user.name}\t{user.role.value}\t{scope}{state}")
        return 0
    if command == "add":
        _check_scope(config, args.platform, args.camera)
        password = read_password(f"password for {args.name}: ")
        user = store.add_user(args.name, Role(args.role), password, args.platform, args.camera)
        _record(
            audit,
            "user.add",
            target=user.name,
            role=user.role.value,
            platforms=args.platform,
            cameras=args.camera,
        )
        print(f"added {user.name} ({user.role.value})")
    elif command == "update":
        platforms, cameras = args.platform, args.camera
        if args.all_cameras:
            platforms, cameras = [], []
        _check_scope(config, platforms or [], cameras or [])
        role = Role(args.role) if args.role else None
        if role not in (None, Role.ADMIN) and store.is_last_admin(args.name):
            raise AuthError(f"{args.name} is the last enabled admin")
        user = store.update_user(args.name, role=role, platforms=platforms, cameras=cameras)
        _record(
            audit,
            "user.update",
            target=args.name,
            changed=[k for k in ("role", "platform", "camera") if getattr(args, k)],
        )
        scope = ",".join(sorted(user.scope.platforms | user.scope.cameras)) or "all cameras"
        print(f"{user.name}: {user.role.value}, {scope}")
    elif command == "passwd":
        store.set_password(args.name, read_password(f"new password for {args.name}: "))
        _record(audit, "user.update", target=args.name, password_reset=True)
        print(f"password set for {args.name}; their sessions have ended")
    elif command in ("disable", "enable"):
        if command == "disable" and store.is_last_admin(args.name):
            raise AuthError(f"{args.name} is the last enabled admin")
        store.update_user(args.name, disabled=command == "disable")
        _record(audit, "user.update", target=args.name, changed=["disabled"])
        print(f"{command}d {args.name}")
    elif command == "remove":
        if store.is_last_admin(args.name):
            raise AuthError(f"{args.name} is the last enabled admin")
        store.remove_user(args.name)
        _record(audit, "user.remove", target=args.name)
        print(f"removed {args.name}")
    return 0


def _token(args: argparse.Namespace, store: AuthStore, audit: AuditLog) -> int:
    command = args.token_command
    if command == "create":
        only = None if args.only is None else [Permission(p) for p in args.only]
        info, secret = store.create_token(args.name, args.label, only)
        _record(audit, "token.create", target=info.user, token=info.id)
        print(secret)
        print(f"token {info.id} for {info.user}: shown once, store it now", file=sys.stderr)
    elif command == "list":
        for info in store.tokens():
            used = "never"
            if info.last_used_at is not None:
                used = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.last_used_at))
            state = "revoked" if info.revoked else "live"
            print(f"{info.id}\t{info.user}\t{info.label}\t{state}\tlast used {used}")
    elif command == "revoke":
        if not store.revoke_token(args.id):
            raise AuthError(f"no live token {args.id!r}")
        _record(audit, "token.revoke", token=args.id)
        print(f"revoked {args.id}")
    return 0
