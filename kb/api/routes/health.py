"""GET /health: database, index and model state, with counts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import text

from kb.api.deps import KB, requires
from kb.api.guard import GuardedRoute
from kb.identity.permissions import Permission as P

router = APIRouter(tags=["health"], route_class=GuardedRoute)


@router.get("/health", dependencies=[requires(P.PUBLIC)])
def health(kb: KB, response: Response) -> dict[str, Any]:
    """200 when the database answers and the index is open and consistent with it; 503 otherwise."""
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
    if answer["status"] == "unavailable":
        response.status_code = 503
    return answer
