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

from kb.web import csrf

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
    return env


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with ``context`` plus ``request``, ``csrf_token`` (the session's CSRF token, '' before
    login) and ``user`` (None unless given) into an HTML response."""
    context.setdefault("user", None)
    context.setdefault("csrf_token", csrf.page_token(request))
    html = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code)
