"""Request and response bodies of sign-in, users, API tokens and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasPath, BeforeValidator, Field

from surveillance.api.schemas.base import In, Out, UtcTime
from surveillance.auth.passwords import MAX_PASSWORD_LENGTH
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission, Role

Password = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
# Sign-in is open to anyone, so its body is capped near what a real one can weigh: a
# 64-character name and a 1024-character password, each character at most 12 bytes as a
# JSON escape (a surrogate pair), is 13 KB. The password change carries two passwords.
SIGN_IN_BODY_BYTES = 16 * 1024
PASSWORD_CHANGE_BODY_BYTES = 32 * 1024
SortedIds = Annotated[list[str], BeforeValidator(sorted)]


class SignInIn(In):
    name: str = Field(min_length=1, max_length=64)
    password: str = Password


class MeOut(Out):
    name: str
    role: Role
    platforms: list[str]
    cameras: list[str]
    permissions: list[str]
    csrf_token: str | None = Field(description="Send as X-CSRF-Token on state changes")
    expires_at: UtcTime | None = None

    @classmethod
    def of(cls, principal: Principal, expires_at: float | None = None) -> MeOut:
        user = principal.user
        return cls(
            name=user.name,
            role=user.role,
            platforms=sorted(user.scope.platforms),
            cameras=sorted(user.scope.cameras),
            permissions=sorted(p.value for p in principal.permissions),
            csrf_token=principal.csrf_token,
            expires_at=expires_at,
        )


class PasswordChangeIn(In):
    current_password: str = Password
    new_password: str = Password


class UserOut(Out):
    """Read from a :class:`~surveillance.auth.principal.User`."""

    name: str
    role: Role
    platforms: SortedIds = Field(validation_alias=AliasPath("scope", "platforms"))
    cameras: SortedIds = Field(validation_alias=AliasPath("scope", "cameras"))
    disabled: bool
    created_at: UtcTime
    password_changed_at: UtcTime


class UserIn(In):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Password
    platforms: list[str] = Field(default_factory=list, max_length=1000)
    cameras: list[str] = Field(default_factory=list, max_length=1000)


class UserPatch(In):
    role: Role | None = None
    platforms: list[str] | None = Field(None, max_length=1000)
    cameras: list[str] | None = Field(None, max_length=1000)
    disabled: bool | None = None
    password: str | None = Field(None, min_length=1, max_length=MAX_PASSWORD_LENGTH)


class TokenIn(In):
    user: str = Field(min_length=1, max_length=64)
    label: str = Field("", max_length=128)
    permissions: list[Permission] | None = Field(
        None, description="Limit the token to these of the user's permissions"
    )


def _sorted_or_none(value: Any) -> Any:
    return None if value is None else sorted(value)


class TokenOut(Out):
    """Read from a :class:`~surveillance.auth.store.TokenInfo`."""

    id: str
    user: str
    label: str
    created_at: UtcTime
    last_used_at: UtcTime | None
    revoked: bool
    permissions: Annotated[list[Permission] | None, BeforeValidator(_sorted_or_none)] = Field(
        description="null: all of the user's"
    )


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret: shown this once, stored only hashed")


class AuditEntryOut(Out):
    """Read from an :class:`~surveillance.auth.audit.AuditEntry`."""

    id: int
    at: UtcTime
    user: str
    user_id: int | None = Field(description="The acting user; null: no user (cli, unknown)")
    action: str
    camera_id: str | None
    client: str
    outcome: str
    detail: dict[str, Any]


class AuditPageOut(Out):
    entries: list[AuditEntryOut]
    next_before_id: int | None
