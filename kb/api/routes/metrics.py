"""GET /metrics: Prometheus text exposition of :mod:`kb.api.metrics`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kb.api.deps import requires
from kb.api.guard import GuardedRoute
from kb.api.metrics import CONTENT_TYPE, Metrics
from kb.identity.permissions import Permission as P

router = APIRouter(tags=["metrics"], route_class=GuardedRoute)


@router.get("/metrics", dependencies=[requires(P.METRICS)], response_class=Response)
def metrics(request: Request) -> Response:
    """Request and search latency histograms, index lag and counts, open tickets by SLA state."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE)
