"""The 运维分析 dashboard (``/ui/analysis``): charts with their numbers beside them, and a CSV download."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from kb.api.deps import KB, CurrentUser, requires
from kb.identity.permissions import Permission as P
from kb.web.analysis_view import analysis_view
from kb.web.routing import PageRoute
from kb.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/ui/analysis", dependencies=[requires(P.ANALYSIS)])
def dashboard(
    kb: KB,
    user: CurrentUser,
    request: Request,
    start: Annotated[dt.date | None, Query()] = None,
    end: Annotated[dt.date | None, Query()] = None,
) -> Response:
    """Satisfaction, SLA breaches and response times per service beside the catalog targets, 推诿, complaints,
    frequent problems, deflection and KB coverage for tickets opened in the window (default: the last 30 days)."""
    view = analysis_view(kb, user, start, end, dt.datetime.now(dt.UTC).date())
    return render(request, "analysis.html", user=user, view=view)
