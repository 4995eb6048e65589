"""The home page: search on a call (``/``, ``/?q=...`` opens with the search done) and its live results fragment
(``/ui/search/results``, what htmx fetches as the agent types)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from kb.api.deps import KB, CurrentUser, requires
from kb.config import MAX_QUERY_CHARS
from kb.errors import ForbiddenError
from kb.identity.permissions import Permission as P
from kb.identity.permissions import holders
from kb.web.routing import PageRoute
from kb.web.templating import landing_page, render
from kb.web.views import SearchForm, kind_options, search_view

router = APIRouter(route_class=PageRoute, include_in_schema=False)

Text = Annotated[str, Query(max_length=MAX_QUERY_CHARS)]
Short = Annotated[str, Query(max_length=200)]


@router.get("/", dependencies=[requires(P.SESSION)])
def home(
    kb: KB, user: CurrentUser, request: Request, q: Text = "", service: Short = "", kind: Short = "", tags: Short = ""
) -> Response:
    """The search page; with ``q`` the results are rendered with the page (a search can be bookmarked). Whoever
    may not search (the administrators) is sent to the first page they may use (:func:`landing_page`); 403 when
    there is none."""
    if not user.may(P.SEARCH):
        landing = landing_page(user)
        if landing is None or landing == "/":
            raise ForbiddenError(f"search needs one of the roles {', '.join(holders(P.SEARCH))}.")
        return RedirectResponse(landing, status_code=303)
    view = search_view(kb, SearchForm(q, service, kind, tags), user)
    return render(request, "search.html", user=user, view=view, kinds=kind_options())


@router.get("/ui/search/results", dependencies=[requires(P.SEARCH)])
def results(
    kb: KB, user: CurrentUser, request: Request, q: Text = "", service: Short = "", kind: Short = "", tags: Short = ""
) -> Response:
    """The results fragment for the query typed so far (htmx swaps it into the page)."""
    view = search_view(kb, SearchForm(q, service, kind, tags), user)
    response = render(request, "_results.html", user=user, view=view)
    response.headers["Vary"] = "HX-Request"
    return response
