"""Login, logout, who am I, and changing one's own password (/auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from kb.api.deps import (
    KB,
    SESSION_COOKIE,
    Audit,
    SessionUser,
    current_session_digest,
    open_session,
    requires,
    session_token,
    set_session_cookie,
)
from kb.api.guard import GuardedRoute
from kb.api.schemas.auth import LoginIn, LoginOut, PasswordIn, TotpEnrolIn, UserPublic
from kb.identity.permissions import Permission as P
from kb.identity.totp import qr_svg

router = APIRouter(prefix="/auth", tags=["auth"], route_class=GuardedRoute)


@router.post("/login", dependencies=[requires(P.PUBLIC)])
def login(kb: KB, request: Request, response: Response, payload: LoginIn) -> LoginOut:
    """Open a session: sets the ``kb_session`` cookie (HttpOnly, SameSite=Strict, Secure unless
    ``KB_INSECURE_COOKIES``) and answers the same token for ``Authorization: Bearer``. 401 for a wrong password or
    unknown user (one message), 423 ``account_locked`` after too many failures, 429 past the per-IP rate limit."""
    result = open_session(kb, request, payload.username, payload.password, payload.totp)
    set_session_cookie(response, kb, result.token)
    return LoginOut(
        token=result.token, expires_at=result.expires_at.isoformat(), must_change_password=result.must_change_password
    )


@router.post("/logout", status_code=204, dependencies=[requires(P.SESSION)])
def logout(kb: KB, request: Request, response: Response, audit: Audit) -> None:
    """End the session (its row is deleted; the token answers 401 from now on)."""
    token = session_token(request)
    if token is not None:
        kb.sessions.logout(token, audit)
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me", dependencies=[requires(P.SESSION)])
def me(account: SessionUser) -> UserPublic:
    """The logged-in account (also while it must change its password)."""
    return UserPublic.model_validate(account.as_dict())


@router.post("/password", dependencies=[requires(P.SESSION)])
def change_password(
    kb: KB, request: Request, account: SessionUser, audit: Audit, payload: PasswordIn
) -> dict[str, Any]:
    """Change one's own password (403 when ``old`` is wrong, 422 ``weak_password`` when the policy refuses
    ``new``); clears ``must_change_password`` and ends the user's other sessions (this one stays open)."""
    kb.sessions.reprove(account.username, payload.old, audit, "password.change")  # counts towards the lockout
    changed = kb.accounts.change_password(
        account.username, payload.old, payload.new, audit, keep_session=current_session_digest(request)
    )
    return {"user": UserPublic.model_validate(changed.as_dict()).model_dump()}


@router.post("/totp", dependencies=[requires(P.SESSION)])
def enrol_totp(kb: KB, account: SessionUser, audit: Audit, payload: TotpEnrolIn) -> dict[str, str]:
    """(Re-)enrol one's own TOTP second factor after giving the password (403 when wrong): answers the
    ``otpauth://`` URI and its QR code as SVG, once; the earlier secret stops working."""
    kb.sessions.reprove(account.username, payload.password, audit, "totp.enrol")  # counts towards the lockout
    uri = kb.accounts.enrol_own_totp(account.username, payload.password, audit)
    return {"uri": uri, "svg": qr_svg(uri)}
