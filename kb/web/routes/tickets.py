"""The ticket queue (``/ui/tickets``), a new ticket (``/ui/tickets/new``, e.g. from a search the KB could not
answer), and the ticket page (``/ui/tickets/{id}``) with live suggestions and the assign / escalate / note / close
forms. Every form calls the use case its API route calls (:mod:`kb.api.routes.tickets`)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from kb.api.deps import KB, CurrentUser, requires
from kb.api.params import MAX_ID, TicketId
from kb.api.views import check_closing_articles
from kb.desk.queue import TicketQuery, list_tickets
from kb.desk.stated import LEVELS, PRIORITIES, Stated, new_ticket
from kb.desk.workflow import TIERS, Closure
from kb.errors import InvalidInputError
from kb.identity.permissions import Permission as P
from kb.identity.scopes import visible_ticket
from kb.ingest.mapping import TICKET_CHANNELS
from kb.web.labels import TICKET_STATUSES
from kb.web.routing import PageRoute
from kb.web.templating import render
from kb.web.ticket_view import sla_clock, suggestions_for, ticket_page_view

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Short = Annotated[str, Query(max_length=200)]
Text = Annotated[str, Form(max_length=10_000)]


@router.get("/ui/tickets", dependencies=[requires(P.TICKET_READ)])
def queue(
    kb: KB,
    user: CurrentUser,
    request: Request,
    status: Short = "",
    tier: Short = "",
    service: Short = "",
    channel: Short = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The queue of my groups' tickets, nearest resolution deadline first, with SLA clocks and filters."""
    query = TicketQuery(
        statuses=(status,) if status else ("new", "assigned", "in_progress", "pending", "resolved"),
        tiers=(tier,) if tier else (),
        services=(service,) if service else (),
        channels=(channel,) if channel else (),
        viewer=user,
        sort="due",
        cursor=cursor,
    )
    page = list_tickets(kb.database, query)
    rows = [(t, sla_clock(t)) for t in page.items]
    filters = {"status": status, "tier": tier, "service": service, "channel": channel}
    next_url = f"/ui/tickets?{urlencode({**filters, 'cursor': page.next_cursor})}" if page.next_cursor else ""
    return render(
        request,
        "tickets.html",
        user=user,
        rows=rows,
        next_url=next_url,
        filters=filters,
        statuses=TICKET_STATUSES,
        tiers=TIERS,
        channels=TICKET_CHANNELS,
        services=[s.name for s in kb.catalog.services.values()],
    )


@router.get("/ui/tickets/new", dependencies=[requires(P.TICKET_CREATE)])
def new_ticket_form(kb: KB, user: CurrentUser, request: Request, title: Short = "") -> Response:
    """The form of a new ticket, its title taken from ``title`` (the search the KB had no sure answer for); channel,
    requester and priority only for desk roles (:mod:`kb.desk.stated`)."""
    return render(
        request,
        "ticket_new.html",
        user=user,
        title=title,
        desk=user.may(P.TICKET_GROUPS),
        channels=TICKET_CHANNELS,
        services=[s.name for s in kb.catalog.services.values()],
        levels=LEVELS,
        priorities=PRIORITIES,
    )


@router.post("/ui/tickets", dependencies=[requires(P.TICKET_CREATE)])
def create_ticket(
    kb: KB,
    user: CurrentUser,
    title: Annotated[str, Form(min_length=1, max_length=500)],
    service: Annotated[str, Form(min_length=1, max_length=120)],
    description: Text = "",
    channel: Annotated[str, Form(max_length=20)] = "",
    requester: Annotated[str, Form(max_length=200)] = "",
    impact: Annotated[str, Form(max_length=20)] = "",
    urgency: Annotated[str, Form(max_length=20)] = "",
    priority: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Take the ticket in (``kb.tickets.take_in``, as ``POST /tickets``, with what the caller may state:
    :mod:`kb.desk.stated`) and open its page."""
    stated = Stated(
        title, description, service, channel or None, requester or None, priority or None, impact or None,
        urgency or None,
    )  # fmt: skip
    new = new_ticket(stated, user)
    handled = kb.tickets.take_in(new, user.username, viewer=user)
    return RedirectResponse(f"/ui/tickets/{handled.ticket.id}", status_code=303)


@router.get("/ui/tickets/{ticket_id}", dependencies=[requires(P.TICKET_READ)])
def ticket_page(kb: KB, user: CurrentUser, request: Request, ticket_id: TicketId) -> Response:
    """The ticket: facts, SLA clock, suggestions, similar closed tickets, proposed group, forms, event history."""
    view = ticket_page_view(kb, ticket_id, user)
    return render(request, "ticket.html", user=user, view=view, statuses=TICKET_STATUSES)


@router.get("/ui/tickets/{ticket_id}/suggestions", dependencies=[requires(P.SUGGEST)])
def live_suggestions(
    kb: KB,
    user: CurrentUser,
    request: Request,
    ticket_id: TicketId,
    note: Annotated[str, Query(max_length=10_000)] = "",
) -> Response:
    """The suggestions fragment for the ticket plus the note being typed (nothing is stored)."""
    suggestions = suggestions_for(kb, visible_ticket(user, kb.desk.get(ticket_id)), user, note)
    return render(request, "_suggestions.html", user=user, suggestions=suggestions)


def _back(ticket_id: int) -> Response:
    return RedirectResponse(f"/ui/tickets/{ticket_id}", status_code=303)


@router.post("/ui/tickets/{ticket_id}/notes", dependencies=[requires(P.TICKET_WORK)])
def add_note(
    kb: KB, user: CurrentUser, ticket_id: TicketId, note: Annotated[str, Form(min_length=1, max_length=10_000)]
) -> Response:
    """Add a work note (``kb.desk.note``)."""
    visible_ticket(user, kb.desk.get(ticket_id))
    kb.desk.note(ticket_id, note, user.username)
    return _back(ticket_id)


@router.post("/ui/tickets/{ticket_id}/assign", dependencies=[requires(P.TICKET_WORK)])
def assign(
    kb: KB,
    user: CurrentUser,
    ticket_id: TicketId,
    group: Annotated[str, Form(min_length=1, max_length=120)],
    assignee: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    """Assign to a resolver group and optionally a person (``kb.desk.assign``)."""
    visible_ticket(user, kb.desk.get(ticket_id))
    kb.desk.assign(ticket_id, group, user.username, assignee=assignee or None)
    return _back(ticket_id)


@router.post("/ui/tickets/{ticket_id}/escalate", dependencies=[requires(P.TICKET_WORK)])
def escalate(
    kb: KB,
    user: CurrentUser,
    ticket_id: TicketId,
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
    group: Annotated[str, Form(max_length=120)] = "",
) -> Response:
    """Escalate one line (``kb.tickets.escalate``: the suggestions are re-run with the notes)."""
    visible_ticket(user, kb.desk.get(ticket_id))
    kb.tickets.escalate(ticket_id, user.username, reason=reason, group=group or None, viewer=user)
    return _back(ticket_id)


@router.post("/ui/tickets/{ticket_id}/close", dependencies=[requires(P.TICKET_WORK)])
def close(
    kb: KB,
    user: CurrentUser,
    ticket_id: TicketId,
    resolution: Annotated[str, Form(min_length=1, max_length=10_000)],
    root_cause: Annotated[str, Form(min_length=1, max_length=10_000)],
    articles: Annotated[str, Form(max_length=200, pattern=r"^[\d,\s]*$")] = "",
) -> Response:
    """Close a resolved ticket (``kb.tickets.close``, as ``POST /tickets/{id}/close``), counting the articles used
    (ids, comma-separated); 409 when the ticket is not resolved yet (nothing changes)."""
    ids = tuple(int(a) for a in articles.replace(" ", ",").split(",") if a)
    if any(not 1 <= i <= MAX_ID for i in ids):
        raise InvalidInputError(f"Article ids are whole numbers from 1 to {MAX_ID}, separated by commas.")
    visible_ticket(user, kb.desk.get(ticket_id))
    check_closing_articles(kb, user, ids)
    kb.tickets.close(ticket_id, Closure(resolution=resolution, root_cause=root_cause, articles=ids), user.username)
    return _back(ticket_id)


@router.post("/ui/tickets/{ticket_id}/status", dependencies=[requires(P.TICKET_WORK)])
def move(
    kb: KB, user: CurrentUser, ticket_id: TicketId, status: Annotated[str, Form(min_length=1, max_length=20)]
) -> Response:
    """Move the ticket (``kb.desk.move``; 409 with the allowed moves when the workflow refuses)."""
    visible_ticket(user, kb.desk.get(ticket_id))
    kb.desk.move(ticket_id, status, user.username)
    return _back(ticket_id)
