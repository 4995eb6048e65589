"""FastAPI dependencies as ``Annotated`` aliases: the knowledge base and the acting user.

The acting user comes from one credential, read by :func:`session_token` from an ``Authorization: Bearer`` header,
else the ``kb_session`` cookie, and resolved once per request by :func:`authenticate`: a service token (``kbs_``,
:mod:`kb.identity.service_tokens`) or a session token (:mod:`kb.identity.sessions`). A user whose password is
one-time or expired may only reach the routes that take :data:`SessionUser` (``/auth/me``, ``/auth/password``,
``/auth/logout``); every other route takes :data:`CurrentUser`, which answers 403 ``must_change_password`` for them.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from kb.errors import ForbiddenError, PasswordChangeRequiredError, UnauthorizedError
from kb.identity.accounts import Account
from kb.identity.audit import DENIED, AuditContext
from kb.identity.hardening import ip_allowed
from kb.identity.observer import CURRENT
from kb.identity.permissions import Permission, holders
from kb.identity.scopes import EDITOR_ROLES, Principal
from kb.identity.service_tokens import is_service_token
from kb.identity.sessions import LoginResult, token_digest
from kb.service import KnowledgeBase

__all__ = ["EDITOR_ROLES", "KB", "Audit", "CurrentUser", "Principal", "SessionUser", "requires"]

#: Routes of the three administrators (and imports), accepted only from the allowed networks.
ADMIN_PERMISSIONS = frozenset(
    {Permission.USER_ADMIN, Permission.SECURITY_ADMIN, Permission.AUDIT_READ, Permission.IMPORT}
)
#: Name of the session cookie.
SESSION_COOKIE = "kb_session"


# The dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread,
# and each such hop costs the event loop a thread hand-off and the request a wait for the interpreter lock behind
# whatever else runs (with 40 writers, the largest part of a search's time; bench/concurrent_writes.py).


async def get_kb(request: Request) -> KnowledgeBase:
    """The app's :class:`KnowledgeBase`."""
    kb: KnowledgeBase = request.app.state.kb
    return kb


def client_ip(request: Request) -> str | None:
    """The client's IP address as the server sees it (no proxy headers are trusted)."""
    return request.client.host if request.client else None


def open_session(kb: KnowledgeBase, request: Request, username: str, password: str, totp: str | None) -> LoginResult:
    """Log in from ``request``'s client: the per-IP rate limit, then :meth:`kb.identity.sessions.Sessions.login`
    (lockout, TOTP, audit). The one login use case of ``POST /auth/login`` and the login page.

    Raises:
        RateLimitedError (429), UnauthorizedError (401), AccountLockedError (423): as the rate limit and login say.
    """
    ip = client_ip(request)
    kb.login_limiter.hit(ip or "unknown")
    return kb.sessions.login(username, password, totp=totp, ip=ip)


def set_session_cookie(response: Response, kb: KnowledgeBase, token: str) -> None:
    """Set the ``kb_session`` cookie: HttpOnly, SameSite=Strict, Secure unless ``KB_INSECURE_COOKIES``, for the
    session's absolute lifetime (seconds)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(kb.sessions.policy.lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=not kb.settings.insecure_cookies,
    )


def session_token(request: Request) -> str | None:
    """The session token of the request: the Bearer token, else the ``kb_session`` cookie, else None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def current_session_digest(request: Request) -> str | None:
    """The stored digest (:func:`kb.identity.sessions.token_digest`) of the request's session token, or None."""
    token = session_token(request)
    return token_digest(token) if token else None


def authenticate(request: Request) -> Account | Principal:
    """Who the request's credential (:func:`session_token`) belongs to: the service account's principal for a
    service token (``kbs_``), else the account of the live session (even one that must change its password).
    The one authentication of a request: the permission check, the audit context, the acting user and the
    ``Idempotency-Key`` scope (:mod:`kb.api.idempotency`) all use it. Resolved once per request: the outcome, a
    refusal too, is kept on the request's state, so a request writes at most one refused-credential audit row.

    Raises:
        UnauthorizedError: no token, or an unknown, ended, expired or revoked one (401; audited by the stores).
    """
    state = request.state
    failure: UnauthorizedError | None = getattr(state, "auth_failure", None)
    if failure is not None:
        raise failure
    service: Principal | None = getattr(state, "principal", None)
    if service is not None:
        return service
    cached: Account | None = getattr(state, "account", None)
    if cached is not None:
        return cached
    token = session_token(request)
    if token is None:
        raise UnauthorizedError("Log in first: POST /auth/login, then send the kb_session cookie or the Bearer token.")
    kb: KnowledgeBase = request.app.state.kb
    try:
        if is_service_token(token):
            principal = kb.service_tokens.resolve(token, ip=client_ip(request))
            state.principal = principal
            return principal
        account = kb.sessions.resolve(token, ip=client_ip(request))
        state.account = account
        return account
    except UnauthorizedError as exc:
        state.auth_failure = exc
        raise


def is_authenticated(request: Request) -> bool:
    """Whether :func:`authenticate` has already run for this request (its answer is kept: no I/O is left)."""
    state = request.state
    return any(getattr(state, name, None) is not None for name in ("auth_failure", "principal", "account"))


def credential_scope(request: Request) -> str | None:
    """The stored digest (:func:`kb.identity.sessions.token_digest`, hex SHA-256) of the credential that
    authenticates the request when it is live now, else None: the owner of an ``Idempotency-Key``. The same
    token :func:`authenticate` resolves, so a header the authentication ignores (``Authorization: Basic``, an
    empty ``Bearer``) never chooses whose answers are replayed (found by session 9's outside tester)."""
    try:
        authenticate(request)
    except UnauthorizedError:
        return None
    return current_session_digest(request)


def audit_context_of(request: Request, holder: Account | Principal) -> AuditContext:
    """The audit context of ``holder`` (from :func:`authenticate`) acting through ``request``: a person's name
    and roles, or a service account's ``svc:`` name and no roles; the client IP."""
    roles = holder.roles if isinstance(holder, Account) else ()
    return AuditContext(holder.username, roles, client_ip(request))


def get_session_account(request: Request) -> Account:
    """The account of the request's live session, even one that must change its password.

    Raises:
        UnauthorizedError: no token, an unknown, ended or expired one, or a service token (401).
    """
    holder = authenticate(request)
    if not isinstance(holder, Account):
        raise UnauthorizedError("A service token cannot use the routes of a person's session.")
    return holder


def get_current_user(request: Request) -> Principal:
    """The acting principal: the service account of a service token, else the session's user.

    Raises:
        UnauthorizedError: not logged in (401).
        PasswordChangeRequiredError: the password is one-time or expired (403 ``must_change_password``).
    """
    holder = authenticate(request)
    if not isinstance(holder, Account):
        return holder
    if holder.must_change_password or holder.password_expired:
        raise PasswordChangeRequiredError(
            f"{holder.username} must change the password first: POST /auth/password with old and new."
        )
    return Principal(holder.username, holder.roles, holder.groups)


async def current_principal(request: Request) -> Principal:
    """:func:`get_current_user` as the ``CurrentUser`` dependency: on the event loop when the route's
    :class:`Requires` has resolved the credential already (every route has one), else in a worker thread.

    Raises:
        UnauthorizedError, PasswordChangeRequiredError: as :func:`get_current_user`.
    """
    if not is_authenticated(request):
        return await run_in_threadpool(get_current_user, request)
    return get_current_user(request)


def optional_principal(request: Request) -> Principal | None:
    """The acting principal when the request carries a live session or service token that may act, else None
    (for public routes that show more to some callers; never raises for a missing or bad token)."""
    if session_token(request) is None:
        return None
    try:
        return get_current_user(request)
    except (UnauthorizedError, PasswordChangeRequiredError, ForbiddenError):
        return None


class Requires:
    """The one permission check: a route dependency that lets the request through only when the caller may do
    ``permission`` (:mod:`kb.identity.permissions`). Declared on each route's decorator with :func:`requires`;
    a test walks ``app.routes`` and fails on any route without one.

    Raises (when called):
        UnauthorizedError: no live session (401), or for ``IM_WEBHOOK`` a missing or wrong signature.
        PasswordChangeRequiredError: the password must be changed first (403).
        ForbiddenError: no role of the caller grants the permission (403).
    """

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> None:
        if self.permission is Permission.PUBLIC:
            return
        kb: KnowledgeBase = request.app.state.kb
        if self.permission is Permission.IM_WEBHOOK:
            check_onebot_signature(kb.settings.im_webhook_secret, await request.body(), request.headers)
            return
        holder = authenticate(request) if is_authenticated(request) else await run_in_threadpool(authenticate, request)
        context = audit_context_of(request, holder)
        request.state.audit_context = context
        CURRENT.set(context)
        if self.permission is Permission.SESSION:
            if not isinstance(holder, Account):
                raise UnauthorizedError("A service token cannot use the routes of a person's session.")
            return
        await self._check(request, kb, get_current_user(request), context)

    async def _check(self, request: Request, kb: KnowledgeBase, user: Principal, context: AuditContext) -> None:
        """The permission and, for administrator routes, the client network; a refusal is audited."""
        try:
            if not user.may(self.permission):
                raise ForbiddenError(
                    f"{self.permission.value} needs one of the roles {', '.join(holders(self.permission)) or 'none'}"
                    f"; {user.username} has {', '.join(user.roles) or 'none'}."
                )
            if self.permission in ADMIN_PERMISSIONS:
                cidrs = await run_in_threadpool(kb.security.admin_cidrs)
                if not ip_allowed(context.ip, cidrs):
                    raise ForbiddenError(
                        f"Administrator routes accept only the configured networks; {context.ip} is not one of them."
                    )
        except ForbiddenError as exc:
            what = f"{request.method} {request.url.path}"
            await run_in_threadpool(kb.audit.write, context, "authorization", what, DENIED, exc.code)
            raise


def requires(permission: Permission) -> Any:
    """The route dependency checking ``permission``: ``@router.get(..., dependencies=[requires(P.SEARCH)])``."""
    return Depends(Requires(permission))


def check_onebot_signature(secret: str, body: bytes, headers: Any) -> None:
    """OneBot v11 HTTP POST authentication: ``X-Signature: sha1=<hex HMAC-SHA1 of the body keyed by secret>``,
    compared in constant time.

    Raises:
        UnauthorizedError: no secret configured (``KB_IM_WEBHOOK_SECRET``), or a missing or wrong signature.
    """
    if not secret:
        raise UnauthorizedError("The IM webhook is off: set KB_IM_WEBHOOK_SECRET to the OneBot secret.")
    expected = "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()
    if not hmac.compare_digest(expected, str(headers.get("x-signature", ""))):
        raise UnauthorizedError("Missing or wrong X-Signature for the IM webhook.")


async def get_audit_context(request: Request) -> AuditContext:
    """Who acts, from where, for the audit trail: the context the route's :class:`Requires` set, else that of
    :func:`authenticate` (a service token is its service account, not a forged session: found by session 9's
    outside tester, whose ``kbs_`` token got a 401 and a "session failure" row on every audited route).

    Raises:
        UnauthorizedError: no live credential (401).
    """
    context: AuditContext | None = getattr(request.state, "audit_context", None)
    if context is not None:
        return context
    holder = authenticate(request) if is_authenticated(request) else await run_in_threadpool(authenticate, request)
    return audit_context_of(request, holder)


KB = Annotated[KnowledgeBase, Depends(get_kb)]
SessionUser = Annotated[Account, Depends(get_session_account)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
Audit = Annotated[AuditContext, Depends(get_audit_context)]
