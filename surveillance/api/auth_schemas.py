"""Request and response bodies of sign-in, users, API tokens and the audit log."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from surveillance.auth.audit import AuditEntry
from surveillance.auth.passwords import MAX_PASSWORD_LENGTH
from surveillance.auth.principal import Principal, User
from surveillance.auth.roles import Permission, Role
from surveillance.auth.store import TokenInfo

Password = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class SignInIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Password


class MeOut(BaseModel):
    name: str
    role: Role
    platforms: list[str]
    cameras: list[str]
    permissions: list[str]
    csrf_token: str | None = Field(description="Send as X-CSRF-Token on state changes")
    expires_at: float | None = None

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


class PasswordChangeIn(BaseModel):
    current_password: str = Password
    new_password: str = Password


class UserOut(BaseModel):
    name: str
    role: Role
    platforms: list[str]
    cameras: list[str]
    disabled: bool
    created_at: float
    password_changed_at: float

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            name=user.name,
            role=user.role,
            platforms=sorted(user.scope.platforms),
            cameras=sorted(user.scope.cameras),
            disabled=user.disabled,
            created_at=user.created_at,
            password_changed_at=user.password_changed_at,
        )


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role
    password: str = Password
    platforms: list[str] = Field(default_factory=list, max_length=1000)
    cameras: list[str] = Field(default_factory=list, max_length=1000)


class UserPatch(BaseModel):
    role: Role | None = None
    platforms: list[str] | None = Field(None, max_length=1000)
    cameras: list[str] | None = Field(None, max_length=1000)
    disabled: bool | None = None
    password: str | None = Field(None, min_length=1, max_length=MAX_PASSWORD_LENGTH)


class TokenIn(BaseModel):
    user: str = Field(min_length=1, max_length=64)
    label: str = Field("", max_length=128)
    permissions: list[Permission] | None = Field(
        None, description="Limit the token to these of the user's permissions"
    )


class TokenOut(BaseModel):
    id: str
    user: str
    label: str
    created_at: float
    last_used_at: float | None
    revoked: bool
    permissions: list[Permission] | None = Field(description="null: all of the user's")

    @classmethod
    def of(cls, info: TokenInfo) -> TokenOut:
        return cls(
            id=info.id,
            user=info.user,
            label=info.label,
            created_at=info.created_at,
            last_used_at=info.last_used_at,
            revoked=info.revoked,
            permissions=None if info.permissions is None else sorted(info.permissions),
        )


class NewTokenOut(TokenOut):
    token: str = Field(description="The secret: shown this once, stored only hashed")


class AuditEntryOut(BaseModel):
    id: int
    at: float
    user: str
    action: str
    camera_id: str | None
    client: str
    outcome: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        assert entry.id is not None
        return cls(
            id=entry.id,
            at=entry.at,
            user=entry.user,
            action=entry.action,
            camera_id=entry.camera_id,
            client=entry.client,
            outcome=entry.outcome,
            detail=entry.detail,
        )


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_before_id: int | None
