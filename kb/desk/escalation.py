"""SLA clocks at work: open tickets at risk are flagged, tickets past a target are escalated.

For every open ticket, in its service's support time (:mod:`kb.desk.sla`):

- **response**: not yet responded at ``response_due`` -> breached;
- **resolution**: ``sla_at_risk_share`` (setting, 0.8) of the resolution target used -> ``at_risk`` (an event);
  past ``resolution_due`` -> ``breached``: the ticket is escalated one line (L1 -> L2 -> L3) and the suggestions
  are re-run with everything learnt so far (title, description and work notes), recorded as an event.

Each state change is recorded once; a ticket already breached is not escalated again by the clock.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select

from kb.desk.workflow import OPEN, TIERS
from kb.errors import KBError
from kb.models import Ticket, as_utc, utcnow

if TYPE_CHECKING:
    from kb.service import KnowledgeBase


def check_sla(kb: KnowledgeBase, actor: str, now: dt.datetime | None = None) -> list[dict[str, object]]:
    """Update the SLA state of open tickets at ``now`` (default: the current time); returns the changes as
    ``{"ticket_id", "from", "to", "escalated_to"}``."""
    now = now or utcnow()
    with kb.database.session() as session:
        tickets = list(session.scalars(select(Ticket).where(Ticket.status.in_(OPEN), Ticket.source == "desk")))
    changes: list[dict[str, object]] = []
    for ticket in tickets:
        state = _state(kb, ticket, now)
        if state == ticket.sla_state:
            continue
        change: dict[str, object] = {"ticket_id": ticket.id, "from": ticket.sla_state, "to": state}
        kb.desk.set_sla_state(ticket.id, state, actor)
        if state == "breached" and ticket.tier != TIERS[-1]:
            escalated = kb.desk.escalate(ticket.id, actor, reason="SLA breached")
            change["escalated_to"] = escalated.tier
            record_suggestions(kb, escalated, actor)
        changes.append(change)
    return changes


def _state(kb: KnowledgeBase, ticket: Ticket, now: dt.datetime) -> str:
    if ticket.service is None or ticket.opened_at is None or ticket.resolution_due is None:
        return ticket.sla_state
    level = kb.catalog.service(ticket.service)
    calendar = kb.catalog.calendar(level)
    opened = as_utc(ticket.opened_at)
    if ticket.responded_at is None and ticket.response_due is not None and now >= as_utc(ticket.response_due):
        return "breached"
    if now >= as_utc(ticket.resolution_due):
        return "breached"
    if calendar.elapsed(opened, now) >= kb.settings.sla_at_risk_share * level.resolution_minutes:
        return "at_risk"
    return "ok"


def record_suggestions(kb: KnowledgeBase, ticket: Ticket, actor: str) -> None:
    """Re-run the suggestions with the ticket's text and work notes, and record what was suggested."""
    text = "\n".join(p for p in (ticket.title, ticket.description, ticket.work_notes) if p)
    try:
        found = kb.suggest(text, ticket.service or "")
    except KBError:
        return
    kb.desk.record(
        ticket.id,
        "suggested",
        actor,
        articles=[a.article_id for a in found.articles],
        similar=[s.ticket_id for s in found.similar],
        group=found.assignment.group,
        low_confidence=found.low_confidence,
    )
