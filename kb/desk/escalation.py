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
from dataclasses import dataclass
from typing import Any

from kb.desk.intake import TicketDesk
from kb.desk.sla import ServiceCatalog
from kb.desk.workflow import TIERS, Desk
from kb.models import Ticket, as_utc, utcnow


@dataclass(frozen=True)
class SlaChange:
    """One ticket's SLA state change (``ok``, ``at_risk``, ``breached``) and the line it was escalated to, if any."""

    ticket_id: int
    before: str
    after: str
    escalated_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """``{"ticket_id", "from", "to"}`` and ``"escalated_to"`` when the clock escalated the ticket."""
        out: dict[str, Any] = {"ticket_id": self.ticket_id, "from": self.before, "to": self.after}
        if self.escalated_to is not None:
            out["escalated_to"] = self.escalated_to
        return out


class SlaMonitor:
    """Runs the SLA clocks over the desk's open tickets.

    Args:
        desk: the workflow (SLA state changes with their events).
        catalog: support hours and targets per service type.
        tickets: the use cases (escalation on breach re-runs and records the suggestions).
        at_risk_share: share (0-1) of the resolution target after which a ticket is at risk (setting, 0.8).
    """

    def __init__(self, desk: Desk, catalog: ServiceCatalog, tickets: TicketDesk, at_risk_share: float) -> None:
        self.desk = desk
        self.catalog = catalog
        self.tickets = tickets
        self.at_risk_share = at_risk_share

    def check(self, actor: str = "sla-scheduler", now: dt.datetime | None = None) -> list[SlaChange]:
        """Update the SLA state of open tickets at ``now`` (aware; default: the current time); returns the
        changes, escalating (one line) each ticket that has just breached."""
        now = now or utcnow()
        tickets = self.desk.open_tickets()
        changes: list[SlaChange] = []
        for ticket in tickets:
            state = self._state(ticket, now)
            if state == ticket.sla_state:
                continue
            self.desk.set_sla_state(ticket.id, state, actor)
            escalated_to = None
            if state == "breached" and ticket.tier != TIERS[-1]:
                escalated_to = self.tickets.escalate(ticket.id, actor, reason="SLA breached").ticket.tier
            changes.append(SlaChange(ticket.id, ticket.sla_state, state, escalated_to))
        return changes

    def _state(self, ticket: Ticket, now: dt.datetime) -> str:
        if ticket.service is None or ticket.opened_at is None or ticket.resolution_due is None:
            return ticket.sla_state
        level = self.catalog.service(ticket.service)
        calendar = self.catalog.calendar(level)
        opened = as_utc(ticket.opened_at)
        if ticket.responded_at is None and ticket.response_due is not None and now >= as_utc(ticket.response_due):
            return "breached"
        if now >= as_utc(ticket.resolution_due):
            return "breached"
        if calendar.elapsed(opened, now) >= self.at_risk_share * level.resolution_minutes:
            return "at_risk"
        return "ok"
