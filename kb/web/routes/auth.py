"""Login, logout and changing the password, as pages (the same use cases as ``/auth``: ``kb.sessions.login``,
``kb.sessions.logout``, ``kb.accounts.change_password``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

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
from kb.errors import KBError
from kb.identity.permissions import Permission as P
from kb.web import csrf
from kb.web.labels import LOGIN_ERRORS, error_text
from kb.web.routing import LoginFormRoute, PageRoute, safe_next
from kb.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
login_router = APIRouter(route_class=LoginFormRoute, include_in_schema=False)


def _login_page(request: Request, next_: str, refused: KBError | None = None) -> Response:
    token = request.cookies.get(csrf.LOGIN_COOKIE) or csrf.new_login_token()
    error, detail = error_text(refused.code, refused.status, refused.message, LOGIN_ERRORS) if refused else ("", "")
    status = refused.status if refused else 200
    response = render(
        request, "login.html", status, next=safe_next(next_), error=error, error_detail=detail, login_token=token
    )
    response.set_cookie(csrf.LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/ui/login")
    response.headers.update(refused.headers() if refused else {})
    return response


@login_router.get("/ui/login", dependencies=[requires(P.PUBLIC)])
def login_page(request: Request, next: Annotated[str, Query(max_length=2000)] = "/") -> Response:
    """The login form (user name, password, TOTP code)."""
    return _login_page(request, next)


@login_router.post("/ui/login", dependencies=[requires(P.PUBLIC)])
def login(
    kb: KB,
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    totp: Annotated[str, Form(max_length=20)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Open a session like ``POST /auth/login`` (same rate limit, lockout and TOTP rules) and go to ``next``;
    a refused login shows the form again with the reason and the same status as the API (401, 423, 429)."""
    try:
        result = open_session(kb, request, username, password, totp.strip() or None)
    except KBError as exc:
        return _login_page(request, next, exc)
    target = "/ui/password" if result.must_change_password else safe_next(next)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, kb, result.token)
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/ui/login")
    return response


@router.post("/ui/logout", dependencies=[requires(P.SESSION)])
def logout(kb: KB, request: Request, audit: Audit) -> Response:
    """End the session and go to the login page."""
    token = session_token(request)
    if token is not None:
        kb.sessions.logout(token, audit)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/ui/password", dependencies=[requires(P.SESSION)])
def password_page(request: Request, account: SessionUser) -> Response:
    """The form to change one's password (the one-time password of a new account must be changed first)."""
    return render(request, "password.html", account=account, error="", error_detail="")


@router.post("/ui/password", dependencies=[requires(P.SESSION)])
def change_password(
    kb: KB,
    request: Request,
    account: SessionUser,
    audit: Audit,
    old: Annotated[str, Form(max_length=1000)],
    new: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Change the password like ``POST /auth/password`` (the user's other sessions end); a refusal shows the form
    again with the reason."""
    try:
        kb.sessions.reprove(account.username, old, audit, "password.change")  # counts towards the lockout
        kb.accounts.change_password(account.username, old, new, audit, keep_session=current_session_digest(request))
    except KBError as exc:
        error, detail = error_text(exc.code, exc.status, exc.message)
        return render(request, "password.html", exc.status, account=account, error=error, error_detail=detail)
    return RedirectResponse("/", status_code=303)


ROUTERS = (login_router, router)
