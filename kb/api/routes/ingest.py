"""POST /ingest/tickets: a ticket export in the request body, imported through a mapping."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from kb.api.deps import KB, Audit, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.errors import PayloadTooLargeError
from kb.identity.permissions import Permission as P
from kb.ingest.mapping import mapping_by_name
from kb.ingest.tickets import import_tickets

router = APIRouter(prefix="/ingest", tags=["ingest"], route_class=GuardedRoute)

#: Largest export accepted over HTTP, in bytes (larger ones: `kb tickets import` on the server).
MAX_EXPORT_BYTES = 200 * 1024 * 1024


@router.post("/tickets", dependencies=[requires(P.IMPORT)])
async def ingest_tickets(
    kb: KB,
    user: CurrentUser,
    audit: Audit,
    request: Request,
    mapping: Annotated[str, Query(description="Mapping name (it-tickets-en, kb-zh, or one in KB_MAPPINGS_DIR).")],
    format: Annotated[
        Literal["csv", "jsonl", "zip"] | None,
        Query(description="Body format; wins over the mapping's `format` (default: the mapping's, else csv)."),
    ] = None,
) -> dict[str, Any]:
    """Import the export in the body (CSV, JSONL or a zip holding one). Malformed rows are reported with their line
    number and skipped; the rest imports. Rows that would overwrite a ticket the desk has worked, or take a number
    another ticket holds, are conflicts: skipped, listed and audited as the caller (:mod:`kb.ingest.tickets`).
    413 above 200 MiB; 422 for an unknown mapping (chosen by name from the ``mappings_dir`` setting or the bundled
    ones; never a path)."""
    chosen = mapping_by_name(mapping, kb.settings.mappings_dir)
    with tempfile.TemporaryDirectory(prefix="kb-ingest-") as tmp:
        path = Path(tmp) / f"export.{format or chosen.format or 'csv'}"
        size = 0
        with path.open("wb") as handle:
            async for piece in request.stream():
                size += len(piece)
                if size > MAX_EXPORT_BYTES:
                    raise PayloadTooLargeError(f"A ticket export over HTTP is limited to {MAX_EXPORT_BYTES} bytes.")
                handle.write(piece)
        report = await run_in_threadpool(
            lambda: import_tickets(
                kb.database,
                path,
                chosen,
                audit=lambda s, event, obj, why: kb.audit.record(s, audit, event, obj, reason=why),
                rows_format=format if format in ("csv", "jsonl") else None,
            )
        )
    return report.as_dict()


@router.post("/distill", dependencies=[requires(P.DISTILL)])
async def distill_tickets(
    kb: KB,
    user: CurrentUser,
    source: Annotated[str | None, Query(description="Only tickets of this export.")] = None,
    category: Annotated[str | None, Query(description="Only tickets of this category.")] = None,
) -> dict[str, Any]:
    """Group alike closed tickets into draft articles or update proposals (kb.desk.distill); answers the
    report with each draft's size, id, proposal and title."""
    report = await run_in_threadpool(lambda: kb.distiller.distill(user.username, source=source, category=category))
    return report.as_dict()
