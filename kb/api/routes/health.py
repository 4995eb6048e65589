"""GET /health (and HEAD): the service's state for anyone; database, index and model details with counts only
for callers who may read the metrics (``metrics``: sysadmin, monitoring service accounts), since counts and
error texts tell an outsider about the data and the set-up."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from kb.api.deps import KB, optional_principal, requires
from kb.api.guard import GuardedRoute
from kb.identity.permissions import Permission as P

router = APIRouter(tags=["health"], route_class=GuardedRoute)


@router.head("/health", include_in_schema=False, dependencies=[requires(P.PUBLIC)])
async def health_head(kb: KB) -> Response:
    """``GET /health``'s status code without a body (for load balancers that probe with HEAD)."""
    answer = await run_in_threadpool(_state, kb)
    return Response(status_code=503 if answer["status"] == "unavailable" else 200)


@router.get("/health", dependencies=[requires(P.PUBLIC)])
async def health(kb: KB, request: Request, response: Response) -> dict[str, Any]:
    """200 when the database answers and the index is open and consistent with it; 503 otherwise. The body is
    ``{"status": "ok" | "degraded" | "unavailable"}``, with ``database``, ``index`` and ``model`` for callers who
    may read the metrics."""
    viewer = await run_in_threadpool(optional_principal, request)
    answer = await run_in_threadpool(_state, kb)
    if answer["status"] == "unavailable":
        response.status_code = 503
    if viewer is None or not viewer.may(P.METRICS):
        return {"status": answer["status"]}
    return answer


def _state(kb: KB) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": "ok"}
    try:
        with kb.database.session() as session:
            session.execute(text("SELECT 1"))
        answer["database"] = {"ok": True, "dialect": kb.database.engine.dialect.name}
    except Exception as exc:
        answer["database"] = {"ok": False, "error": str(exc)}
        answer["status"] = "unavailable"
    try:
        answer["index"] = asdict(kb.index.status(full=False))
        if not answer["index"]["consistent"] and answer["status"] == "ok":
            answer["status"] = "degraded"
    except Exception as exc:
        answer["index"] = {"ok": False, "error": str(exc)}
        answer["status"] = "unavailable"
    answer["model"] = {"name": kb.embedder.name, "dimension": kb.embedder.dimension}
    return answer
