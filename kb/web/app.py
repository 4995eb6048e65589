"""The whole application: the JSON API of :func:`kb.api.create_app` plus the pages and their static files.

The pages import the API's permission check (:mod:`kb.api.deps`), so the API cannot import the pages without a
package cycle; this module composes the two instead, and ``kb serve`` serves what it builds.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from kb.api import create_app as create_api
from kb.config import Settings
from kb.service import KnowledgeBase
from kb.web.routes import admin, analysis, articles, auth, debug, editor, search, security, tickets
from kb.web.routing import http_error
from kb.web.templating import STATIC, STATIC_URL


class StaticAssets(StaticFiles):
    """The vendored scripts, styles and fonts: public, so a browser may keep them, but it revalidates each use
    (``Cache-Control: no-cache`` with the ETag: a 304 after an upgrade changes nothing, new files after one do)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file at ``path`` (Starlette's answer) with ``Cache-Control: no-cache``."""
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


def create_app(settings: Settings, *, kb: KnowledgeBase | None = None) -> FastAPI:
    """The API (:func:`kb.api.create_app`, same arguments) with the pages: ``/`` and ``/ui/...``, static files
    under ``/ui/static``. A framework error (unknown path, wrong method) under ``/ui/`` answers the HTML error page
    (:func:`kb.web.routing.http_error`); elsewhere the API's JSON."""
    app = create_api(settings, kb=kb)
    for router in (
        *auth.ROUTERS,
        search.router,
        articles.router,
        tickets.router,
        analysis.router,
        debug.router,
        editor.router,
        admin.router,
        security.router,
    ):
        app.include_router(router)
    app.mount(STATIC_URL, StaticAssets(directory=STATIC), name="static")
    app.add_exception_handler(StarletteHTTPException, http_error(app.exception_handlers[StarletteHTTPException]))
    return app
