"""View models of the ticket pages: SLA clocks of the queue and the ticket page's parts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from kb.desk.records import event_views, shows_work_notes
from kb.desk.suggest import Suggestions
from kb.identity.scopes import Principal, visible_ticket
from kb.models import Ticket, as_utc, utcnow
from kb.service import KnowledgeBase


@dataclass(frozen=True)
class SlaClock:
    """Time left to the resolution deadline: ``label`` like ``剩余 3小时05分`` or ``超时 12分``, and ``state``
    (``ok``, ``at_risk``, ``breached``: the SLA monitor's state of the ticket, or ``breached`` once the deadline has
    passed), which the page colours."""

    label: str
    state: str


def _span(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时"
    return f"{hours}小时{mins:02d}分" if hours else f"{mins}分"


def sla_clock(ticket: Ticket, now: dt.datetime | None = None) -> SlaClock:
    """The SLA clock of ``ticket`` at ``now`` (default: the current UTC time); closed tickets and tickets without a
    deadline show ``—``. Minutes are wall-clock minutes to the deadline the catalog computed in support time."""
    if ticket.status == "closed" or ticket.resolution_due is None:
        return SlaClock("—", "ok")
    left = as_utc(ticket.resolution_due) - (now or utcnow())
    minutes = int(left.total_seconds() // 60)
    if minutes < 0:
        return SlaClock(f"超时 {_span(-minutes)}", "breached")
    state = ticket.sla_state if ticket.sla_state in ("at_risk", "breached") else "ok"
    return SlaClock(f"剩余 {_span(minutes)}", state)


@dataclass(frozen=True)
class TicketPageView:
    """The ticket page: the ticket, its SLA clock, its events (oldest first, as :func:`kb.desk.records.event_views`
    shows them to the viewer), the suggestions for its text and notes, the catalog's services (for the forms), the
    known resolver groups and whether the viewer is shown the work notes."""

    ticket: Ticket
    clock: SlaClock
    events: list[dict[str, Any]]
    suggestions: Suggestions
    groups: list[str]
    show_work_notes: bool = False


def suggestions_for(kb: KnowledgeBase, ticket: Ticket, viewer: Principal, draft: str = "") -> Suggestions:
    """Suggestions for the ticket's title, description, saved work notes (for a viewer shown them) and the note
    being typed (``draft``), from the same use case as ``POST /suggest``, as ``viewer`` may see them.

    Raises:
        InvalidInputError: the ticket's service is not in the catalog.
    """
    notes = ticket.work_notes if shows_work_notes(viewer) else ""
    text = "\n".join(p for p in (ticket.description, notes, draft) if p and p.strip())
    return kb.tickets.suggest(ticket.title, text, ticket.service or "", viewer=viewer)


def ticket_page_view(kb: KnowledgeBase, ticket_id: int, viewer: Principal) -> TicketPageView:
    """The view of one ticket, as ``viewer`` may see it.

    Raises:
        NotFoundError: no such ticket, or one ``viewer`` may not see (the same answer).
    """
    ticket = visible_ticket(viewer, kb.desk.get(ticket_id))
    groups = sorted({s.group for s in kb.catalog.services.values()})
    suggestions = suggestions_for(kb, ticket, viewer)
    events = event_views(kb.database, viewer, kb.desk.events(ticket_id))
    return TicketPageView(ticket, sla_clock(ticket), events, suggestions, groups, shows_work_notes(viewer))
