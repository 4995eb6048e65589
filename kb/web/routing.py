"""How a page route answers errors and checks CSRF: :class:`PageRoute`, the route class of every page.

* Not logged in (``UnauthorizedError`` from the permission check): 303 to ``/ui/login?next=<this page>``; for an
  htmx request 401 with ``HX-Redirect`` so the whole window goes to the login page.
* The password must be changed first: 303 to ``/ui/password``.
* Any other :class:`kb.errors.KBError` (403 without the role, 404, 409, 422 ...) and invalid parameters: an HTML
  page (or fragment for htmx) with the same status, the error's ``code``, its Chinese title and sentence
  (:mod:`kb.web.labels`) and the API's English detail folded below; with the nav and the signed-in user.
* An unexpected exception: logged with the request id, and a 500 page naming that id (not the JSON of the API).
* Unknown paths under ``/ui/`` (and 404/405 of the framework there): the same HTML page, see :func:`http_error`.
* A form body without ``Content-Length`` (411) or over :data:`MAX_FORM_BYTES` (413) is refused unread.
* A state-changing method (POST) without the right CSRF token (:mod:`kb.web.csrf`): 403 ``csrf_failed``,
  checked before the route's code runs, so nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kb.api.deps import get_current_user
from kb.api.guard import request_id_of
from kb.errors import KBError, PasswordChangeRequiredError, UnauthorizedError
from kb.identity.scopes import Principal
from kb.web import csrf
from kb.web.labels import error_text, error_title
from kb.web.templating import render

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Largest form body a page takes, in bytes: an article of 300,000 CJK characters, URL-encoded (9 bytes each).
MAX_FORM_BYTES = 3_000_000
#: Content-Security-Policy of every page: scripts and styles only from kb itself, no inline script, no plugins,
#: no framing (CSP Level 3; ECharts sets element styles from script, which style-src does not restrict).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def is_htmx(request: Request) -> bool:
    """True for a request htmx made (header ``HX-Request: true``)."""
    return request.headers.get("hx-request") == "true"


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site (``/...`` but not ``//...`` or ``/\\...``), else ``/``: the login
    page never redirects elsewhere (no open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def is_page_path(path: str) -> bool:
    """True for a path the pages own (``/`` and ``/ui/...``); every other path is the JSON API's."""
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def page_user(request: Request) -> Principal | None:
    """The signed-in user of ``request`` for the nav of an error page, None when there is none (no session, an
    ended one, or one that must change its password first). Never raises."""
    try:
        return get_current_user(request)
    except KBError:
        return None


def error_page(request: Request, status: int, code: str, detail: str, *, request_id: str = "") -> Response:
    """The HTML answer to an error: the error page (nav, signed-in user), or the error fragment for an htmx request.
    It shows the Chinese title of ``status`` and a sentence: ``detail`` itself when it is Chinese (the pages' own
    messages are), else the sentence of ``code`` (:mod:`kb.web.labels`) with ``detail`` (the API's sentence, in
    English) folded below as 技术细节. ``request_id`` (of a 500) is shown for the report to the administrator."""
    template = "_error.html" if is_htmx(request) else "error.html"
    message, folded = error_text(code, status, detail)
    return render(
        request,
        template,
        status_code=status,
        user=page_user(request),
        status=status,
        code=code,
        title=error_title(status),
        message=message,
        detail=folded,
        request_id=request_id,
    )


#: ``code`` of the framework's own HTTP errors (unknown path, wrong method), as the API names them.
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def http_error(
    api_handler: Callable[[Request, Exception], Response | Awaitable[Response]],
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """An exception handler for Starlette's ``HTTPException`` (unknown path, wrong method): the HTML error page for
    a page path (:func:`is_page_path`), else ``api_handler`` (the API's JSON answer)."""

    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, StarletteHTTPException) and is_page_path(request.url.path):
            code = HTTP_CODES.get(exc.status_code, "http_error")
            response = error_page(request, exc.status_code, code, f"{request.method} {request.url.path}")
            if exc.headers:
                response.headers.update(exc.headers)
            return _secure(response)
        answer = api_handler(request, exc)
        return answer if isinstance(answer, Response) else await answer

    return handle


def _secure(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # as the API (kb.api.security): no ticket URL leaves
    return response


class PageRoute(APIRoute):
    """An APIRoute for pages (module docstring). Set ``login_form = True`` on a subclass for the login form, whose
    CSRF token is the double-submit cookie instead of the session's."""

    login_form = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The FastAPI handler wrapped with the CSRF check and the HTML error answers."""
        handler = super().get_route_handler()
        login_form = self.login_form

        async def page(request: Request) -> Response:
            try:
                if request.method not in SAFE_METHODS:
                    declared = request.headers.get("content-length", "")
                    if not declared.isdigit():
                        return error_page(request, 411, "length_required", "表单请求必须带 Content-Length。")
                    if int(declared) > MAX_FORM_BYTES:
                        return error_page(request, 413, "payload_too_large", f"表单最多 {MAX_FORM_BYTES} 字节。")
                    form = await request.form()
                    sent = request.headers.get(csrf.HEADER) or form.get(csrf.FIELD)
                    if not csrf.is_valid(request, sent if isinstance(sent, str) else None, login=login_form):
                        return error_page(
                            request, 403, "csrf_failed", "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。"
                        )
                response = await handler(request)
            except UnauthorizedError:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if is_htmx(request):
                    response = Response(status_code=401, headers={"HX-Redirect": "/ui/login"})
                else:
                    response = RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
            except PasswordChangeRequiredError:
                response = RedirectResponse("/ui/password", status_code=303)
            except KBError as exc:
                response = error_page(request, exc.status, exc.code, exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                response = error_page(request, 422, "invalid_input", problems)
            except StarletteHTTPException as exc:
                response = error_page(
                    request, exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), exc.detail
                )
            except Exception:
                request_id = request_id_of(request)
                logger.exception("page %s failed (request id %s)", request.url.path, request_id)
                response = error_page(request, 500, "internal_error", "", request_id=request_id)
            return _secure(response)

        return page


class LoginFormRoute(PageRoute):
    """The route class of the login form (CSRF by the double-submit cookie)."""

    login_form = True
