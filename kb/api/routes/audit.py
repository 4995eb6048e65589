"""GET /audit: the audit trail for the 审计管理员 (filter, page, CSV export). Reading it is itself audited."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from kb.api.deps import KB, Audit, requires
from kb.api.guard import GuardedRoute
from kb.api.params import MAX_ID
from kb.identity.audit import CSV_FIELDS, as_row
from kb.identity.exports import safe_cell
from kb.identity.permissions import Permission as P
from kb.models import as_utc

router = APIRouter(tags=["audit"], route_class=GuardedRoute)


@router.get("/audit", response_model=None, dependencies=[requires(P.AUDIT_READ)])
def audit_events(
    kb: KB,
    audit: Audit,
    actor: str | None = None,
    event: str | None = None,
    result: Literal["success", "failure", "denied"] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    """Rows newest first matching every filter (``since`` inclusive, ``until`` exclusive; ISO 8601, no offset
    means UTC), as JSON ``{"total", "items"}`` or CSV (an export, audited as ``audit.export``)."""
    total, rows = kb.audit.query(
        actor=actor,
        event=event,
        result=result,
        since=as_utc(since) if since else None,
        until=as_utc(until) if until else None,
        limit=limit,
        offset=offset,
    )
    filters = f"actor={actor or ''} event={event or ''} result={result or ''} offset={offset} limit={limit}"
    kb.audit.write(audit, "audit.export" if format == "csv" else "audit.read", "audit_events", reason=filters)
    items = [as_row(r) for r in rows]
    if format == "json":
        return {"total": total, "items": items}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_FIELDS))
    writer.writeheader()
    writer.writerows({k: safe_cell(v) for k, v in item.items()} for item in items)  # no formulas
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
