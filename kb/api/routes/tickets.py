"""The desk over HTTP: ticket intake with suggestions, assignment, escalation, notes, status, closure, deflection,
and suggestions for a ticket that lives elsewhere (POST /suggest)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Query, Response, status

from kb.api.deps import KB, Audit, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.api.params import TicketId
from kb.api.schemas.tickets import (
    AssignIn,
    CloseIn,
    DeflectIn,
    EscalateIn,
    NoteIn,
    StatusIn,
    SuggestIn,
    TicketIn,
    TicketListOut,
    TicketSummary,
)
from kb.api.views import check_closing_articles, handled_view, ticket_view
from kb.desk.analysis import as_csv
from kb.desk.channels.im import handle_event
from kb.desk.queue import MAX_PAGE, TicketQuery, list_tickets
from kb.desk.records import event_views
from kb.desk.stated import Stated, new_ticket
from kb.desk.workflow import Closure
from kb.identity.masking import mask_json, mask_personal, needs_masking
from kb.identity.permissions import Permission as P
from kb.identity.scopes import ticket_visible, usable_article, visible_ticket
from kb.ingest.intake_text import clean_strings
from kb.models import as_utc


class IntakeRoute(GuardedRoute):
    """The desk's routes take text in from requesters and channels: NUL and control characters in their JSON
    bodies are removed (:mod:`kb.ingest.intake_text`), not refused like elsewhere."""

    clean: ClassVar[Callable[[Any], Any] | None] = clean_strings


router = APIRouter(tags=["desk"], route_class=IntakeRoute)


@router.post("/tickets", status_code=status.HTTP_201_CREATED, dependencies=[requires(P.TICKET_CREATE)])
def createticket_view(kb: KB, user: CurrentUser, payload: TicketIn) -> dict[str, Any]:
    """Take in a ticket (channel ``web``, ``api`` for a service account; desk roles may log ``phone`` calls and
    tickets for others, and set the priority, which otherwise follows the stated impact and urgency:
    :mod:`kb.desk.stated`); answers the ticket with its SLA targets and the suggestions (articles with the
    low-confidence flag, similar tickets, SLA, group contact, assignment)."""
    new = new_ticket(Stated(**payload.model_dump()), user)
    return handled_view(kb.tickets.take_in(new, user.username, viewer=user), user)


@router.get("/tickets", response_model=TicketListOut, dependencies=[requires(P.TICKET_READ)])
def list_tickets_view(
    kb: KB,
    user: CurrentUser,
    status_: Annotated[list[str] | None, Query(alias="status", description="Statuses, repeated.")] = None,
    tier: Annotated[list[str] | None, Query(description="L1, L2, L3, repeated.")] = None,
    service: Annotated[list[str] | None, Query()] = None,
    channel: Annotated[list[str] | None, Query()] = None,
    sort: Annotated[
        str, Query(description="-opened (newest first, default) or due (nearest deadline first).")
    ] = "-opened",
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> TicketListOut:
    """The desk's tickets the caller may see (:func:`kb.identity.scopes.ticket_clause`), filtered, sorted,
    one page at a time (keyset cursor); summaries only, no descriptions or notes. 422 for a foreign cursor."""
    query = TicketQuery(
        statuses=tuple(status_ or ()),
        tiers=tuple(tier or ()),
        services=tuple(service or ()),
        channels=tuple(channel or ()),
        viewer=user,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    page = list_tickets(kb.database, query)
    items = [TicketSummary.model_validate(t, from_attributes=True) for t in page.items]
    items = [
        TicketSummary.model_validate(mask_json(i.model_dump(mode="json"))) if needs_masking(user, t.requester) else i
        for i, t in zip(items, page.items, strict=True)
    ]
    return TicketListOut(items=items, next_cursor=page.next_cursor)


@router.post("/suggest", dependencies=[requires(P.SUGGEST)])
def suggest_for(kb: KB, user: CurrentUser, payload: SuggestIn) -> dict[str, Any]:
    """Suggestions for a ticket that lives elsewhere (nothing is stored)."""
    return kb.tickets.suggest(payload.title, payload.description, payload.service, viewer=user).as_dict()


@router.get("/tickets/{ticket_id}", dependencies=[requires(P.TICKET_READ)])
def getticket_view(kb: KB, user: CurrentUser, ticket_id: TicketId) -> dict[str, Any]:
    """A ticket with its audit trail (every assignment, escalation, note and status change, with who and when), as
    the caller may see it (:mod:`kb.desk.records`: no work notes for requesters, only visible articles and
    tickets named)."""
    ticket = visible_ticket(user, kb.desk.get(ticket_id))
    events = event_views(kb.database, user, kb.desk.events(ticket_id))
    answer = {"ticket": ticket_view(ticket, user), "events": events}
    return mask_json(answer) if needs_masking(user, ticket.requester) else answer


@router.post("/tickets/{ticket_id}/assign", dependencies=[requires(P.TICKET_WORK)])
def assign(kb: KB, user: CurrentUser, ticket_id: TicketId, payload: AssignIn) -> dict[str, Any]:
    """Assign or reassign to a resolver group (and a person)."""
    visible_ticket(user, kb.desk.get(ticket_id))
    return ticket_view(kb.desk.assign(ticket_id, payload.group, user.username, assignee=payload.assignee), user)


@router.post("/tickets/{ticket_id}/escalate", dependencies=[requires(P.TICKET_WORK)])
def escalate(kb: KB, user: CurrentUser, ticket_id: TicketId, payload: EscalateIn) -> dict[str, Any]:
    """Escalate one line (L1 -> L2 -> L3); the suggestions are re-run with the work notes so far."""
    visible_ticket(user, kb.desk.get(ticket_id))
    escalated = kb.tickets.escalate(ticket_id, user.username, reason=payload.reason, group=payload.group, viewer=user)
    return handled_view(escalated, user)


@router.post("/tickets/{ticket_id}/notes", dependencies=[requires(P.TICKET_WORK)])
def add_note(kb: KB, user: CurrentUser, ticket_id: TicketId, payload: NoteIn) -> dict[str, Any]:
    """Add a work note."""
    visible_ticket(user, kb.desk.get(ticket_id))
    return ticket_view(kb.desk.note(ticket_id, payload.text, user.username), user)


@router.post("/tickets/{ticket_id}/status", dependencies=[requires(P.TICKET_WORK)])
def change_status(kb: KB, user: CurrentUser, ticket_id: TicketId, payload: StatusIn) -> dict[str, Any]:
    """Move the ticket (409 ``illegal_transition`` with ``allowed`` when the workflow does not allow it)."""
    visible_ticket(user, kb.desk.get(ticket_id))
    return ticket_view(kb.desk.move(ticket_id, payload.status, user.username), user)


@router.post("/tickets/{ticket_id}/close", dependencies=[requires(P.TICKET_WORK)])
def close(kb: KB, user: CurrentUser, ticket_id: TicketId, payload: CloseIn) -> dict[str, Any]:
    """Close a resolved ticket (resolution and root cause required); each article used counts as having resolved
    it. The closed ticket is input for distillation (``kb tickets distill``). An article the caller may not see
    answers 404 like a missing one, a draft 409, and nothing changes (:func:`kb.api.views.check_closing_articles`)."""
    visible_ticket(user, kb.desk.get(ticket_id))
    check_closing_articles(kb, user, payload.articles)
    closure = Closure(
        payload.resolution, payload.root_cause, payload.satisfaction, payload.comment, tuple(payload.articles)
    )
    handled = kb.tickets.close(ticket_id, closure, user.username)
    return ticket_view(handled.ticket, user)


@router.post("/tickets/{ticket_id}/deflect", dependencies=[requires(P.TICKET_DEFLECT)])
def deflect(kb: KB, user: CurrentUser, ticket_id: TicketId, payload: DeflectIn) -> dict[str, Any]:
    """The suggested article was the fix: the ticket closes as deflected and the article's use is counted."""
    visible_ticket(user, kb.desk.get(ticket_id))
    usable_article(user, kb.store.get(payload.article_id))  # 404 unseen, 409 not published
    return ticket_view(kb.tickets.deflect(ticket_id, payload.article_id, user.username).ticket, user)


@router.post("/intake/im", dependencies=[requires(P.IM_WEBHOOK)])
def im_webhook(kb: KB, event: dict[str, Any]) -> dict[str, Any]:
    """OneBot v11 webhook for QQ-style bots: a message opens a ticket (or is threaded onto one) and the answer is
    the bot's quick reply (see :mod:`kb.desk.channels.im`). Authenticated by the ``X-Signature`` HMAC of the body
    with ``KB_IM_WEBHOOK_SECRET`` instead of a session."""
    return handle_event(kb.tickets, event, kb.settings.intake_default_service, kb.settings.im_actor)


@router.get("/analysis", response_model=None, dependencies=[requires(P.ANALYSIS)])
def analysis(
    kb: KB,
    user: CurrentUser,
    audit: Audit,
    start: dt.datetime,
    end: dt.datetime,
    format: Literal["json", "csv"] = "json",
    ping_pong_min: int = 3,
) -> dict[str, Any] | Response:
    """Operations analysis for tickets opened in [start, end) (ISO 8601; no offset means UTC), as JSON or CSV
    (see :mod:`kb.desk.analysis`), with phone and ID-card numbers masked; audited as ``analysis.export``. Ticket
    numbers and example titles only of tickets the caller may read (none without ``ticket.read``), titles
    redacted."""
    report = kb.analysis.analyze(as_utc(start), as_utc(end), viewer=user, ping_pong_min=ping_pong_min)
    kb.audit.write(audit, "analysis.export", f"{start.isoformat()}..{end.isoformat()}", reason=format)
    if format == "csv":  # exports never carry phone or ID-card numbers (kb.identity.masking)
        return Response(mask_personal(as_csv(report)), media_type="text/csv; charset=utf-8")
    masked: dict[str, Any] = mask_json(report.as_dict())
    return masked


@router.post("/sla/check", dependencies=[requires(P.SLA_CHECK)])
def check_sla(kb: KB, user: CurrentUser) -> list[dict[str, object]]:
    """Run the SLA check now (the server also runs it every ``sla_check_seconds``) and answer the state changes
    of the tickets the caller may see (the check itself covers every ticket; session 8's outside tester: it
    answered other groups' changes too)."""
    changes = kb.sla_monitor.check(user.username)
    return [c.as_dict() for c in changes if ticket_visible(user, kb.desk.get(c.ticket_id))]
