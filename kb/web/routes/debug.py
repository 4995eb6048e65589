"""Hit testing for editors (``/ui/debug/search``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from kb.api.deps import KB, CurrentUser, requires
from kb.api.params import MAX_ID
from kb.config import MAX_QUERY_CHARS
from kb.identity.permissions import Permission as P
from kb.web.debug_view import debug_view
from kb.web.routing import PageRoute
from kb.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/ui/debug/search", dependencies=[requires(P.ARTICLE_WRITE)])
def hit_testing(
    kb: KB,
    user: CurrentUser,
    request: Request,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
    article: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """The query as analysed, each leg's candidates with raw and normalised scores, the fused order, and why
    (not) the article ``article``."""
    return render(request, "debug.html", user=user, view=debug_view(kb, q, article, user))
