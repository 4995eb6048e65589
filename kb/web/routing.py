"""How a page route answers errors and checks CSRF: :class:`PageRoute`, the route class of every page.

* Not logged in (``UnauthorizedError`` from the permission check): 303 to ``/ui/login?next=<this page>``; for an
  htmx request 401 with ``HX-Redirect`` so the whole window goes to the login page.
* The password must be changed first: 303 to ``/ui/password``.
* Any other :class:`kb.errors.KBError` (403 without the role, 404, 409, 422 ...) and invalid parameters: an HTML
  page (or fragment for htmx) with the same status and the error's ``code`` and sentence; never a 500.
* A form body without ``Content-Length`` (411) or over :data:`MAX_FORM_BYTES` (413) is refused unread.
* A state-changing method (POST) without the right CSRF token (:mod:`kb.web.csrf`): 403 ``csrf_failed``,
  checked before the route's code runs, so nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kb.errors import KBError, PasswordChangeRequiredError, UnauthorizedError
from kb.web import csrf
from kb.web.templating import render

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


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    """The HTML answer to an error: the error page, or the error fragment for an htmx request."""
    template = "_error.html" if is_htmx(request) else "error.html"
    return render(request, template, status_code=status, status=status, code=code, message=message)


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
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            return response

        return page


class LoginFormRoute(PageRoute):
    """The route class of the login form (CSRF by the double-submit cookie)."""

    login_form = True
