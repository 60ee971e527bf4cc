"""Sign-in, sign-out, who am I, and changing one's own password."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response

from surveillance.api.auth_schemas import MeOut, PasswordChangeIn, SignInIn
from surveillance.api.deps import NodeDep
from surveillance.api.guards import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    audit,
    client_address,
    cross_site,
    public,
    requires,
)
from surveillance.api.node import Node
from surveillance.auth.passwords import WeakPassword
from surveillance.auth.principal import Principal
from surveillance.auth.store import NewSession

router = APIRouter(prefix="/api/auth", tags=["auth"])

SignedIn = Annotated[Principal, requires()]


def _set_cookies(request: Request, response: Response, session: NewSession, max_age: float) -> None:
    secure = request.url.scheme == "https"
    common = {"path": "/", "samesite": "strict", "secure": secure, "max_age": int(max_age)}
    response.set_cookie(SESSION_COOKIE, session.secret, httponly=True, **common)  # type: ignore[arg-type]
    # Readable by the pages' scripts, which echo it in X-CSRF-Token; worthless elsewhere.
    response.set_cookie(CSRF_COOKIE, session.csrf_token, httponly=False, **common)  # type: ignore[arg-type]


def _clear_cookies(response: Response) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")


def _refuse_if_throttled(node: Node, request: Request, name: str, action: str) -> None:
    wait = node.sign_in_limiter.retry_after(client_address(request))
    if wait > 0:
        audit(request, name, action, outcome="limited")
        seconds = math.ceil(wait)
        raise HTTPException(
            429,
            f"too many failed attempts from this address; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


@router.post(
    "/login",
    response_model=MeOut,
    summary="Sign in with name and password; sets the session cookie",
    responses={401: {"description": "Wrong name or password"}, 429: {"description": "Wait"}},
    dependencies=[public()],
)
def sign_in(body: SignInIn, request: Request, response: Response, node: NodeDep) -> MeOut:
    client = client_address(request)
    if cross_site(request):
        raise HTTPException(403, "cross-site request refused")
    _refuse_if_throttled(node, request, body.name, "auth.sign_in")
    user = node.auth.check_password(body.name, body.password)
    if user is None:
        node.sign_in_limiter.failed(client)
        audit(request, body.name, "auth.sign_in", outcome="failed")
        raise HTTPException(401, "wrong name or password")
    node.sign_in_limiter.succeeded(client)
    session = node.auth.create_session(user, client)
    _set_cookies(request, response, session, node.auth.policy.max_s)
    audit(request, user.name, "auth.sign_in")
    return MeOut.of(session.principal, session.expires_at)


@router.post("/logout", status_code=204, summary="End this session")
def sign_out(principal: SignedIn, request: Request, node: NodeDep) -> Response:
    if principal.session_hash is not None:
        node.auth.end_session(principal.session_hash)
    audit(request, principal.name, "auth.sign_out")
    response = Response(status_code=204)
    _clear_cookies(response)
    return response


@router.get("/me", response_model=MeOut, summary="The signed-in user, role and scope")
def me(principal: SignedIn) -> MeOut:
    return MeOut.of(principal)


@router.post(
    "/password",
    status_code=204,
    summary="Change one's own password; ends all of the user's sessions",
)
def change_password(
    body: PasswordChangeIn, principal: SignedIn, request: Request, node: NodeDep
) -> Response:
    # Guessing the current password from a stolen session is throttled like sign-in.
    client = client_address(request)
    _refuse_if_throttled(node, request, principal.name, "auth.password")
    if node.auth.check_password(principal.name, body.current_password) is None:
        node.sign_in_limiter.failed(client)
        audit(request, principal.name, "auth.password", outcome="failed")
        raise HTTPException(401, "the current password is wrong")
    try:
        user = node.auth.set_password(principal.name, body.new_password)
    except WeakPassword as exc:
        raise HTTPException(422, str(exc)) from exc
    audit(request, principal.name, "auth.password")
    response = Response(status_code=204)
    if principal.session_hash is not None:
        # Every session ended, this one included; the browser that asked gets a new one.
        session = node.auth.create_session(user, client_address(request))
        _set_cookies(request, response, session, node.auth.policy.max_s)
    return response
