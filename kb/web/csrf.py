"""CSRF protection for the pages (OWASP CSRF Prevention Cheat Sheet).

* With a session: a *synchronizer token derived from the session*, ``HMAC-SHA256(session token, "kb-csrf")``.
  The session token lives only in the HttpOnly ``kb_session`` cookie, so another site can neither read nor compute
  it; every form carries the derived token in the field ``csrf_token`` and htmx sends it as the header
  ``X-CSRF-Token`` (read from ``<meta name="csrf-token">`` by ``static/app.js``).
* Before login (the login form itself, against login CSRF): a *double-submit cookie*, a random value in the
  HttpOnly, SameSite=Strict cookie ``kb_csrf_login`` that the form must repeat.

Both are compared in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

from kb.api.deps import session_token

#: Form field and header that carry the token.
FIELD = "csrf_token"
HEADER = "x-csrf-token"
#: Cookie of the double-submit token of the login form.
LOGIN_COOKIE = "kb_csrf_login"


def token_for_session(session: str) -> str:
    """The CSRF token of a session: 64 hex characters of HMAC-SHA256 keyed by the session token."""
    return hmac.new(session.encode("utf-8"), b"kb-csrf", hashlib.sha256).hexdigest()


def new_login_token() -> str:
    """A fresh random double-submit token for the login form (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def page_token(request: Request) -> str:
    """The token the page being rendered must embed: derived from the session when there is one, else ''."""
    session = session_token(request)
    return token_for_session(session) if session else ""


def expected_token(request: Request, *, login: bool = False) -> str | None:
    """What a state-changing request must send: the session's token, or for the login form (``login``) the login
    cookie's value; None when there is none (the request is refused)."""
    if login:
        return request.cookies.get(LOGIN_COOKIE) or None
    session = session_token(request)
    return token_for_session(session) if session else None


def is_valid(request: Request, sent: str | None, *, login: bool = False) -> bool:
    """True when ``sent`` (form field or header) matches :func:`expected_token` of the request."""
    expected = expected_token(request, login=login)
    if not expected or not sent:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())
