"""Users and credentials for tests: the service has no default account, so each test makes
the users it needs, in the node's own database, the way `surveillance user add` does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from sqlalchemy.orm import Session

from surveillance.api.node import Node
from surveillance.auth.passwords import hash_password
from surveillance.auth.roles import Role
from surveillance.auth.tables import UserRow
from surveillance.auth.users import USER_NAME, name_key

TEST_PASSWORD = "test password, long enough"  # a test fixture, not a secret


def ensure_user(
    node: Node,
    name: str,
    role: Role,
    platforms: Iterable[str] = (),
    cameras: Iterable[str] = (),
) -> None:
    if node.auth.user(name) is not None:
        return
    if USER_NAME.fullmatch(name):
        node.auth.add_user(name, role, TEST_PASSWORD, platforms, cameras)
    else:
        legacy_user(node, name, role, platforms, cameras)


def legacy_user(
    node: Node, name: str, role: Role, platforms: Iterable[str] = (), cameras: Iterable[str] = ()
) -> None:
    """A user whose name the name rule refuses now but a database from before it may hold
    (the hostile-name page tests sign in as "<img ...>"): written to the table as it was."""
    now = time.time()
    with Session(node.engine) as session, session.begin():
        session.add(
            UserRow(
                name=name,
                name_key=name_key(name),
                role=role.value,
                password_hash=hash_password(TEST_PASSWORD),
                platforms=json.dumps(sorted(platforms)),
                cameras=json.dumps(sorted(cameras)),
                disabled=False,
                created_at=now,
                password_changed_at=now,
            )
        )


def bearer(
    node: Node, name: str = "admin", role: Role = Role.ADMIN, **scope: Iterable[str]
) -> dict[str, str]:
    """Headers that authenticate as ``name`` (created with ``role`` if missing) by API token."""
    ensure_user(node, name, role, **scope)
    _, secret = node.auth.create_token(name, "tests")
    return {"Authorization": f"Bearer {secret}"}
