"""The Jinja2 environment of the pages: templates from ``kb/web/templates``, autoescape on for every template
(``select_autoescape`` with ``default=True``), and :func:`render` to answer a page.

Only two kinds of already-safe HTML are marked safe, both by the view code, never in a template: article bodies
from the safe renderer (:func:`kb.articles.rendering.render_html`) and snippets from
:func:`kb.search.snippets.highlight` (every character escaped, only ``<mark>`` added).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from kb.identity.permissions import Permission as P
from kb.identity.permissions import allowed
from kb.identity.scopes import Principal
from kb.web import csrf, labels

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
#: URL prefix of the static files (vendored htmx and ECharts, app.js, style.css).
STATIC_URL = "/ui/static"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one Jinja2 environment (autoescape on, undefined names are errors)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = lambda name: f"{STATIC_URL}/{name}"
    env.filters["label"] = labels.label
    return env


#: The navigation bar: (path, label, permission its page needs); a user sees the links their roles allow.
NAV = (
    ("/", "搜索", P.SEARCH),
    ("/ui/tickets", "工单", P.TICKET_READ),
    ("/ui/analysis", "运维分析", P.ANALYSIS),
    ("/ui/review", "审核", P.ARTICLE_WRITE),
    ("/ui/debug/search", "命中测试", P.ARTICLE_WRITE),
    ("/ui/admin/users", "用户", P.USER_ADMIN),
    ("/ui/admin/security", "安全", P.SECURITY_ADMIN),
    ("/ui/admin/audit", "审计", P.AUDIT_READ),
)


def landing_page(principal: Principal) -> str | None:
    """The first page of :data:`NAV` ``principal`` may use (``/`` for whoever may search; the users page for the
    system administrator, the security page and the audit trail for the other two), None when there is none.
    Found by session 7's outside tester: the system administrator's ``/`` was a 403 page."""
    return next((path for path, _, need in NAV if principal.may(need)), None)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with ``context`` plus ``request``, ``csrf_token`` (the session's CSRF token, '' before
    login), ``user`` (None unless given) and ``nav`` (the links of :data:`NAV` the user's roles allow)."""
    context.setdefault("user", None)
    roles = getattr(context["user"], "roles", ())
    context.setdefault("nav", [(path, label) for path, label, need in NAV if allowed(roles, need)])
    context.setdefault("csrf_token", csrf.page_token(request))
    html = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code)
