"""Users and credentials for tests: the service has no default account, so each test makes
the users it needs, in the node's own database, the way `surveillance user add` does."""

from __future__ import annotations

from collections.abc import Iterable

from surveillance.api.node import Node
from surveillance.auth.roles import Role

TEST_PASSWORD = "test password, long enough"  # a test fixture, not a secret


def ensure_user(
    node: Node,
    name: str,
    role: Role,
    platforms: Iterable[str] = (),
    cameras: Iterable[str] = (),
) -> None:
    if node.auth.user(name) is None:
        node.auth.add_user(name, role, TEST_PASSWORD, platforms, cameras)


def bearer(
    node: Node, name: str = "admin", role: Role = Role.ADMIN, **scope: Iterable[str]
) -> dict[str, str]:
    """Headers that authenticate as ``name`` (created with ``role`` if missing) by API token."""
    ensure_user(node, name, role, **scope)
    _, secret = node.auth.create_token(name, "tests")
    return {"Authorization": f"Bearer {secret}"}
