"""The authenticated party of one request: a user, signed in by session or by API token."""

from __future__ import annotations

from dataclasses import dataclass

from surveillance.auth.roles import ROLE_PERMISSIONS, Permission, Role
from surveillance.auth.scope import Scope


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    scope: Scope
    disabled: bool
    created_at: float
    password_changed_at: float


@dataclass(frozen=True)
class Principal:
    user: User
    # Exactly one of these is set: the session's CSRF token (cookie sign-in), or the id of
    # the API token the request carried.
    session_hash: str | None = None
    csrf_token: str | None = None
    token_id: str | None = None
    # A token may be limited to some of its user's permissions (a metrics scraper needs
    # system.read, not the rest of an admin's rights).
    token_permissions: frozenset[Permission] | None = None

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def scope(self) -> Scope:
        return self.user.scope

    @property
    def permissions(self) -> frozenset[Permission]:
        granted = ROLE_PERMISSIONS[self.user.role]
        if self.token_permissions is not None:
            return granted & self.token_permissions
        return granted

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def sees(self, camera_id: str, platform_id: str) -> bool:
        return self.user.scope.allows(camera_id, platform_id)

    @property
    def sees_everyone(self) -> bool:
        """Whether others' audit entries are visible: unscoped admins only."""
        return (
            Permission.USERS_MANAGE in self.permissions
            and self.user.role is Role.ADMIN
            and not self.user.scope.limited
        )
