"""Users, API tokens and the audit log, for admins (the audit log: everyone, own entries)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from surveillance.api.deps import AuditDep, AuditLogDep, AuthDep, CatalogDep
from surveillance.api.guards import requires
from surveillance.api.schemas.auth import (
    AuditEntryOut,
    AuditPageOut,
    NewTokenOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from surveillance.api.schemas.base import NumericId
from surveillance.auth.audit import AuditAction, AuditQuery
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission, Role
from surveillance.catalog import Catalog
from surveillance.errors import Conflict, InvalidRequest, NotFound

router = APIRouter(prefix="/api", tags=["admin"])

Admin = Annotated[Principal, requires(Permission.USERS_MANAGE)]
AuditReader = Annotated[Principal, requires(Permission.AUDIT_READ)]


LAST_ADMIN = "this is the last enabled admin"


def _check_scope_ids(catalog: Catalog, platforms: Iterable[str], cameras: Iterable[str]) -> None:
    unknown = catalog.unknown(platforms, cameras)
    if unknown:
        raise InvalidRequest(f"unknown {', '.join(unknown)}")


@router.get("/users", response_model=list[UserOut], summary="Users, roles and scopes")
def list_users(auth: AuthDep, principal: Admin) -> list[UserOut]:
    return [UserOut.model_validate(user) for user in auth.users()]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a user")
def add_user(
    body: UserIn, auth: AuthDep, catalog: CatalogDep, audit: AuditDep, principal: Admin
) -> UserOut:
    _check_scope_ids(catalog, body.platforms, body.cameras)
    user = auth.add_user(body.name, body.role, body.password, body.platforms, body.cameras)
    audit(
        principal.name,
        AuditAction.USER_ADD,
        target=user.name,
        role=user.role.value,
        platforms=body.platforms,
        cameras=body.cameras,
    )
    return UserOut.model_validate(user)


@router.patch("/users/{name}", response_model=UserOut, summary="Change role, scope, password")
def update_user(
    name: str,
    body: UserPatch,
    auth: AuthDep,
    catalog: CatalogDep,
    audit: AuditDep,
    principal: Admin,
) -> UserOut:
    _check_scope_ids(catalog, body.platforms or [], body.cameras or [])
    demoting = (body.role not in (None, Role.ADMIN)) or body.disabled
    if demoting and auth.is_last_admin(name):
        raise Conflict(LAST_ADMIN)
    user = auth.update_user(
        name,
        role=body.role,
        platforms=body.platforms,
        cameras=body.cameras,
        disabled=body.disabled,
    )
    if body.password is not None:
        user = auth.set_password(name, body.password)
    changed = sorted(body.model_fields_set - {"password"})
    audit(
        principal.name,
        AuditAction.USER_UPDATE,
        target=name,
        changed=changed,
        password_reset=body.password is not None,
    )
    return UserOut.model_validate(user)


@router.delete("/users/{name}", status_code=204, summary="Remove a user and their tokens")
def remove_user(name: str, auth: AuthDep, audit: AuditDep, principal: Admin) -> Response:
    if auth.is_last_admin(name):
        raise Conflict(LAST_ADMIN)
    auth.remove_user(name)
    audit(principal.name, AuditAction.USER_REMOVE, target=name)
    return Response(status_code=204)


@router.get("/tokens", response_model=list[TokenOut], summary="API tokens (never the secrets)")
def list_tokens(auth: AuthDep, principal: Admin) -> list[TokenOut]:
    return [TokenOut.model_validate(info) for info in auth.tokens()]


@router.post("/tokens", response_model=NewTokenOut, status_code=201, summary="Create a token")
def create_token(body: TokenIn, auth: AuthDep, audit: AuditDep, principal: Admin) -> NewTokenOut:
    info, secret = auth.create_token(body.user, body.label, body.permissions)
    audit(principal.name, AuditAction.TOKEN_CREATE, target=info.user, token=info.id)
    return NewTokenOut(**dict(TokenOut.model_validate(info)), token=secret)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token")
def revoke_token(token_id: str, auth: AuthDep, audit: AuditDep, principal: Admin) -> Response:
    if not auth.revoke_token(token_id):
        raise NotFound(f"no live token {token_id!r}")
    audit(principal.name, AuditAction.TOKEN_REVOKE, token=token_id)
    return Response(status_code=204)


@router.get("/audit", response_model=AuditPageOut, summary="The audit log, newest first")
def audit_log(
    log: AuditLogDep,
    principal: AuditReader,
    user: Annotated[
        str | None, Query(max_length=128, description="Everyone who acted under this name")
    ] = None,
    camera: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        datetime | None, Query(description="ISO 8601 (or Unix seconds), inclusive")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="ISO 8601 (or Unix seconds), exclusive")
    ] = None,
    before_id: Annotated[NumericId | None, Query(description="Page: entries older than")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPageOut:
    """Unscoped admins see everyone's entries; everybody else only their own, by user id:
    someone given a removed user's name does not see that user's entries."""
    since_s = None if since is None else _unix(since)
    user_id = None
    if not principal.sees_everyone:
        own = principal.user
        if user is not None and user != own.name:
            return AuditPageOut(entries=[], next_before_id=None)
        # SQLite gives a new row the id after the highest, so the newest removed user's id
        # comes back: entries from before this user existed are someone else's.
        user, user_id = None, own.id
        since_s = max(since_s or 0.0, own.created_at)
    query = AuditQuery(
        user=user,
        user_id=user_id,
        camera_id=camera,
        action=action,
        since=since_s,
        until=None if until is None else _unix(until),
        before_id=before_id,
        limit=limit,
    )
    entries = log.query(query)
    next_before = entries[-1].id if len(entries) == limit else None
    return AuditPageOut(
        entries=[AuditEntryOut.model_validate(e) for e in entries], next_before_id=next_before
    )


def _unix(moment: datetime) -> float:
    """The table keeps Unix seconds; a time without a zone is read as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
