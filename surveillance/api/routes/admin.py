"""Users, API tokens and the audit log, for admins (the audit log: everyone, own entries)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from surveillance.api.auth_schemas import (
    AuditEntryOut,
    AuditPageOut,
    NewTokenOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from surveillance.api.deps import NodeDep
from surveillance.api.guards import audit, requires
from surveillance.api.node import Node
from surveillance.auth.audit import AuditQuery
from surveillance.auth.passwords import WeakPassword
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission, Role
from surveillance.auth.store import AuthError, UnknownUser, UserExists

router = APIRouter(prefix="/api", tags=["admin"])

Admin = Annotated[Principal, requires(Permission.USERS_MANAGE)]
AuditReader = Annotated[Principal, requires(Permission.AUDIT_READ)]


def _check_scope_ids(node: Node, platforms: Iterable[str], cameras: Iterable[str]) -> None:
    unknown = node.catalog.unknown(platforms, cameras)
    if unknown:
        raise HTTPException(422, f"unknown {', '.join(unknown)}")


def _user_errors(exc: AuthError | WeakPassword) -> HTTPException:
    status = 404 if isinstance(exc, UnknownUser) else 409 if isinstance(exc, UserExists) else 422
    return HTTPException(status, str(exc))


@router.get("/users", response_model=list[UserOut], summary="Users, roles and scopes")
def list_users(node: NodeDep, principal: Admin) -> list[UserOut]:
    return [UserOut.of(user) for user in node.auth.users()]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a user")
def add_user(body: UserIn, node: NodeDep, principal: Admin, request: Request) -> UserOut:
    _check_scope_ids(node, body.platforms, body.cameras)
    try:
        user = node.auth.add_user(body.name, body.role, body.password, body.platforms, body.cameras)
    except (AuthError, WeakPassword) as exc:
        raise _user_errors(exc) from exc
    audit(
        request,
        principal.name,
        "user.add",
        target=user.name,
        role=user.role.value,
        platforms=body.platforms,
        cameras=body.cameras,
    )
    return UserOut.of(user)


@router.patch("/users/{name}", response_model=UserOut, summary="Change role, scope, password")
def update_user(
    name: str, body: UserPatch, node: NodeDep, principal: Admin, request: Request
) -> UserOut:
    _check_scope_ids(node, body.platforms or [], body.cameras or [])
    demoting = (body.role not in (None, Role.ADMIN)) or body.disabled
    if demoting and node.auth.is_last_admin(name):
        raise HTTPException(409, "this is the last enabled admin")
    try:
        user = node.auth.update_user(
            name,
            role=body.role,
            platforms=body.platforms,
            cameras=body.cameras,
            disabled=body.disabled,
        )
        if body.password is not None:
            user = node.auth.set_password(name, body.password)
    except (AuthError, WeakPassword) as exc:
        raise _user_errors(exc) from exc
    changed = sorted(body.model_fields_set - {"password"})
    audit(
        request,
        principal.name,
        "user.update",
        target=name,
        changed=changed,
        password_reset=body.password is not None,
    )
    return UserOut.of(user)


@router.delete("/users/{name}", status_code=204, summary="Remove a user and their tokens")
def remove_user(name: str, node: NodeDep, principal: Admin, request: Request) -> Response:
    if node.auth.is_last_admin(name):
        raise HTTPException(409, "this is the last enabled admin")
    try:
        node.auth.remove_user(name)
    except AuthError as exc:
        raise _user_errors(exc) from exc
    audit(request, principal.name, "user.remove", target=name)
    return Response(status_code=204)


@router.get("/tokens", response_model=list[TokenOut], summary="API tokens (never the secrets)")
def list_tokens(node: NodeDep, principal: Admin) -> list[TokenOut]:
    return [TokenOut.of(info) for info in node.auth.tokens()]


@router.post("/tokens", response_model=NewTokenOut, status_code=201, summary="Create a token")
def create_token(body: TokenIn, node: NodeDep, principal: Admin, request: Request) -> NewTokenOut:
    try:
        info, secret = node.auth.create_token(body.user, body.label, body.permissions)
    except AuthError as exc:
        raise _user_errors(exc) from exc
    audit(request, principal.name, "token.create", target=info.user, token=info.id)
    return NewTokenOut(**TokenOut.of(info).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token")
def revoke_token(token_id: str, node: NodeDep, principal: Admin, request: Request) -> Response:
    if not node.auth.revoke_token(token_id):
        raise HTTPException(404, f"no live token {token_id!r}")
    audit(request, principal.name, "token.revoke", token=token_id)
    return Response(status_code=204)


@router.get("/audit", response_model=AuditPageOut, summary="The audit log, newest first")
def audit_log(
    node: NodeDep,
    principal: AuditReader,
    user: Annotated[str | None, Query(max_length=128)] = None,
    camera: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[float | None, Query(description="Unix time, inclusive")] = None,
    until: Annotated[float | None, Query(description="Unix time, exclusive")] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**62, description="Page: entries older than")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPageOut:
    """Unscoped admins see everyone's entries; everybody else only their own."""
    if not principal.sees_everyone:
        if user is not None and user != principal.name:
            return AuditPageOut(entries=[], next_before_id=None)
        user = principal.name
    entries = node.audit.query(
        AuditQuery(
            user=user,
            camera_id=camera,
            action=action,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
        )
    )
    next_before = entries[-1].id if len(entries) == limit else None
    return AuditPageOut(entries=[AuditEntryOut.of(e) for e in entries], next_before_id=next_before)
