"""Audit rows for the changes of other packages, in their own transactions, without those packages knowing.

:func:`observe` hooks SQLAlchemy's ``before_flush`` on the database's sessions: when a flush carries a row that
records an auditable action, the matching audit row is added to the same flush, so the action and its audit row
commit together or not at all (GB/T 22239-2019 7.1.4.3 a). The actions and the rows that reveal them:

=====================  ===============================================================
article.publish        an ``articles`` row whose ``status`` becomes ``published``
article.retire         ... becomes ``retired`` (other status changes: ``article.status``)
article.delete         an ``articles`` row deleted
article.import         new ``articles`` rows of an import (one audit row per flush, with the count)
ticket.import          new ``tickets`` rows of an export import (one audit row per flush, with the count)
ticket.assign          a ``ticket_events`` row of kind assigned or reassigned
ticket.escalate        ... of kind escalated
ticket.close           ... of kind closed or deflected
ticket.note            ... of kind note (a work note from the API, e-mail or IM)
ticket.reopen          ... of kind reopened (a reply to a closed ticket, by e-mail or IM)
article.restore        an old version made current again (named by the store in ``Session.info``,
                       :data:`kb.db.AUDIT_ACTIONS`)
=====================  ===============================================================

Who acted is the actor the row itself records; roles, client IP and channel come from :data:`CURRENT`, the
context the API's permission check sets for the request (the command line leaves it unset: channel ``system``).
"""

from __future__ import annotations

from collections import Counter
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from kb.db import AUDIT_ACTIONS, Database
from kb.identity.audit import AuditContext, AuditTrail
from kb.models import Article, Ticket, TicketEvent

#: The acting user's audit context for the current request (set by ``kb.api.deps.Requires``).
CURRENT: ContextVar[AuditContext | None] = ContextVar("kb_audit_context", default=None)

_TICKET_KINDS = {"assigned": "ticket.assign", "reassigned": "ticket.assign", "escalated": "ticket.escalate",
                 "closed": "ticket.close", "deflected": "ticket.close", "note": "ticket.note",
                 "reopened": "ticket.reopen"}  # fmt: skip
#: ``tickets.source`` of tickets the desk takes in itself (``kb.desk.workflow.SOURCE``; this package sits below
#: kb.desk and may not import it): those are intake, not import.
DESK_SOURCE = "desk"
_STATUS_EVENTS = {"published": "article.publish", "retired": "article.retire"}


def _context(actor: str) -> AuditContext:
    current = CURRENT.get()
    if current is not None and current.actor == actor:
        return current
    return AuditContext(actor, channel=current.channel if current else "system", ip=current.ip if current else None)


def _found(session: Session) -> list[tuple[str, str, str, str]]:
    """(actor, event, object, reason) of each auditable action in the pending flush."""
    found: list[tuple[str, str, str, str]] = list(session.info.pop(AUDIT_ACTIONS, []))
    imported: Counter[tuple[str, str]] = Counter()
    for row in session.new:
        if isinstance(row, TicketEvent) and row.kind in _TICKET_KINDS:
            found.append((row.actor, _TICKET_KINDS[row.kind], f"ticket {row.ticket_id}", str(row.data.get("to", ""))))
        elif isinstance(row, Ticket) and row.source != DESK_SOURCE:
            imported[("import", f"ticket.import:{row.source}")] += 1
        elif isinstance(row, Article) and row.collection is not None:
            imported[(row.created_by, f"article.import:{row.collection}")] += 1
    for row in session.dirty:
        if isinstance(row, Article):
            history = inspect(row).attrs.status.history
            if history.has_changes() and history.added:
                status = str(history.added[0])
                name = _STATUS_EVENTS.get(status, "article.status")
                found.append((row.updated_by, name, f"article {row.id} {row.title}", f"to {status}"))
    for row in session.deleted:
        if isinstance(row, Article):
            found.append((row.updated_by, "article.delete", f"article {row.id} {row.title}", ""))
    for (actor, key), count in imported.items():
        name, _, source = key.partition(":")
        current = CURRENT.get()
        who = current.actor if current is not None and actor == "import" else actor
        found.append((who, name, source, f"{count} rows"))
    return found


def observe(database: Database, audit: AuditTrail) -> None:
    """Add the audit rows of :mod:`kb.identity.observer`'s table to every flush of ``database``'s sessions."""

    def before_flush(session: Session, _context_: Any, _instances: Any) -> None:
        for actor, name, obj, reason in _found(session):
            audit.record(session, _context(actor), name, obj, reason=reason, flush=False)

    event.listen(database.sessions, "before_flush", before_flush)
