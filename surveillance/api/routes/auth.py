"""Sign-in, sign-out, who am I, and changing one's own password."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response

from surveillance.api.deps import AuditDep, AuthDep, LimiterDep, client_address
from surveillance.api.guards import CSRF_COOKIE, SESSION_COOKIE, cross_site, public, requires
from surveillance.api.schemas.auth import (
    PASSWORD_CHANGE_BODY_BYTES,
    SIGN_IN_BODY_BYTES,
    MeOut,
    PasswordChangeIn,
    SignInIn,
)
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.ratelimit import AttemptLimiter
from surveillance.auth.store import NewSession

router = APIRouter(prefix="/api/auth", tags=["auth"])

SignedIn = Annotated[Principal, requires()]
# Who am I, for any token: it tells a limited token what it may do, and changes nothing.
Anyone = Annotated[Principal, requires(open_to_limited_tokens=True)]


def _set_cookies(request: Request, response: Response, session: NewSession, max_age: float) -> None:
    secure = request.url.scheme == "https"
    common = {"path": "/", "samesite": "strict", "secure": secure, "max_age": int(max_age)}
    response.set_cookie(SESSION_COOKIE, session.secret, httponly=True, **common)  # type: ignore[arg-type]
    # Readable by the pages' scripts, which echo it in X-CSRF-Token; worthless elsewhere.
    response.set_cookie(CSRF_COOKIE, session.csrf_token, httponly=False, **common)  # type: ignore[arg-type]


def _clear_cookies(response: Response) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")


def _count_attempt(
    limiter: AttemptLimiter, request: Request, audit: AuditDep, name: str, action: AuditAction
) -> None:
    """Counts a password attempt from this address before the password is checked, or
    refuses it (429) when the address has used up its attempts (auth/ratelimit.py)."""
    wait = limiter.attempt(client_address(request))
    if wait > 0:
        audit(name, action, outcome="limited")
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
    max_body_size=SIGN_IN_BODY_BYTES,
)
def sign_in(
    body: SignInIn,
    request: Request,
    response: Response,
    auth: AuthDep,
    limiter: LimiterDep,
    audit: AuditDep,
) -> MeOut:
    client = client_address(request)
    if cross_site(request):
        raise HTTPException(403, "cross-site request refused")
    _count_attempt(limiter, request, audit, body.name, AuditAction.SIGN_IN)
    user = auth.check_password(body.name, body.password)
    if user is None:
        audit(body.name, AuditAction.SIGN_IN, outcome="failed")
        raise HTTPException(401, "wrong name or password")
    limiter.succeeded(client)
    session = auth.create_session(user, client)
    _set_cookies(request, response, session, auth.policy.max_s)
    audit(user.name, AuditAction.SIGN_IN)
    return MeOut.of(session.principal, session.expires_at)


@router.post("/logout", status_code=204, summary="End this session")
def sign_out(principal: SignedIn, auth: AuthDep, audit: AuditDep) -> Response:
    if principal.session_hash is not None:
        auth.end_session(principal.session_hash)
    audit(principal.name, AuditAction.SIGN_OUT)
    response = Response(status_code=204)
    _clear_cookies(response)
    return response


@router.get("/me", response_model=MeOut, summary="The signed-in user, role and scope")
def me(principal: Anyone) -> MeOut:
    return MeOut.of(principal)


@router.post(
    "/password",
    status_code=204,
    summary="Change one's own password; ends all of the user's sessions",
    description="Refused (403) to an API token limited to some permissions.",
    max_body_size=PASSWORD_CHANGE_BODY_BYTES,
)
def change_password(
    body: PasswordChangeIn,
    principal: SignedIn,
    request: Request,
    auth: AuthDep,
    limiter: LimiterDep,
    audit: AuditDep,
) -> Response:
    # Guessing the current password from a stolen session is throttled like sign-in.
    client = client_address(request)
    _count_attempt(limiter, request, audit, principal.name, AuditAction.PASSWORD)
    if auth.check_password(principal.name, body.current_password) is None:
        audit(principal.name, AuditAction.PASSWORD, outcome="failed")
        raise HTTPException(401, "the current password is wrong")
    limiter.succeeded(client)
    user = auth.set_password(principal.name, body.new_password)  # WeakPassword: 422
    audit(principal.name, AuditAction.PASSWORD)
    response = Response(status_code=204)
    if principal.session_hash is not None:
        # Every session ended, this one included; the browser that asked gets a new one.
        session = auth.create_session(user, client)
        _set_cookies(request, response, session, auth.policy.max_s)
    return response
