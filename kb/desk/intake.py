"""The desk's use cases: the one way a ticket is opened, followed up, escalated, closed or deflected.

Every channel — the web form and API (``POST /tickets``), e-mail over SMTP (:mod:`kb.desk.channels.email`), the IM
webhook (:mod:`kb.desk.channels.im`) and the hotline (an agent logging the call through the API, channel ``phone``)
— parses its input into a :class:`~kb.desk.workflow.NewTicket` and calls :meth:`TicketDesk.take_in`; the same text
gets the same suggestions on every channel, and they are recorded on the ticket in the transaction that creates it.
Escalation (by an agent or by the SLA clock) searches and encodes once and records what it suggested in the
transaction that raises the line.
"""

from __future__ import annotations

from dataclasses import dataclass

from kb.desk.suggest import Suggester, Suggestions
from kb.desk.workflow import Closure, Desk, NewTicket
from kb.errors import InvalidInputError
from kb.identity.scopes import CHANNEL, Principal
from kb.models import Ticket


def suggestion_text(title: str, description: str = "", work_notes: str = "") -> str:
    """The text suggestions are computed from: title, description and (at escalation) the work notes so far. A
    description that starts with the title (an IM message whose first line became the title) counts once, so the
    same words give the same text on every channel."""
    title, description = title.strip(), description.strip()
    parts = [description] if description.startswith(title) else [title, description]
    return "\n".join(p for p in (*parts, work_notes) if p)


@dataclass(frozen=True)
class Handled:
    """A ticket after a use case, with the suggestions it recorded (None when none were made)."""

    ticket: Ticket
    suggestions: Suggestions | None = None


class TicketDesk:
    """Use cases over the ticket workflow.

    Args:
        desk: the workflow (transactions, transitions, audit trail).
        suggester: suggestions for a ticket text.
    """

    def __init__(self, desk: Desk, suggester: Suggester) -> None:
        self.desk = desk
        self.suggester = suggester

    def thread_of(self, message_keys: list[str], number: str | None) -> int | None:
        """The ticket a channel message belongs to (see :meth:`kb.desk.workflow.Desk.thread_of`), None if new."""
        return self.desk.thread_of(message_keys, number)

    def suggest(self, title: str, description: str, service: str, *, viewer: Principal = CHANNEL) -> Suggestions:
        """Suggestions for a ticket that lives elsewhere (nothing is stored), as ``viewer`` may see them.

        Raises:
            InvalidInputError: unknown service type.
        """
        return self.suggester.suggest(suggestion_text(title, description), service, viewer)

    def take_in(
        self, new: NewTicket, actor: str, *, message_key: str | None = None, viewer: Principal = CHANNEL
    ) -> Handled:
        """Open a ticket from any channel: suggestions for its text (as ``viewer`` may see them: by default the
        channels', public articles only), then one transaction that creates it, records the suggestions and
        remembers the channel's ``message_key`` (e-mail Message-ID, IM message id).

        Raises:
            InvalidInputError: unknown service type or channel, empty title.
        """
        found = self.suggester.suggest(suggestion_text(new.title, new.description), new.service, viewer)
        ticket = self.desk.open(new, actor, suggested=found.record(), message_key=message_key)
        return Handled(ticket, found)

    def follow_up(self, ticket_id: int, text: str, actor: str, *, message_key: str | None = None) -> Handled:
        """A later message on a ticket (an e-mail reply, an IM message quoting the ticket): a work note.

        Raises:
            NotFoundError: no such ticket. ConflictError: the ticket is closed. InvalidInputError: no text.
        """
        return Handled(self.desk.note(ticket_id, text, actor, message_key=message_key))

    def escalate(
        self, ticket_id: int, actor: str, *, reason: str, group: str | None = None, viewer: Principal = CHANNEL
    ) -> Handled:
        """Raise the support line and re-run the suggestions with everything learnt so far (title, description,
        work notes): one search and one encode, recorded in the escalation's transaction.

        Raises:
            NotFoundError: no such ticket. ConflictError: already at L3, or closed. (A ticket whose service type
            is not in the catalog is escalated without suggestions.)
        """
        ticket = self.desk.get(ticket_id)
        text = suggestion_text(ticket.title, ticket.description, ticket.work_notes)
        try:
            found: Suggestions | None = self.suggester.suggest(text, ticket.service or "", viewer)
        except InvalidInputError:  # an imported ticket whose service type is not in the catalog
            found = None
        suggested = found.record() if found is not None else None
        escalated = self.desk.escalate(ticket_id, actor, reason=reason, group=group, suggested=suggested)
        return Handled(escalated, found)

    def close(self, ticket_id: int, closure: Closure, actor: str) -> Handled:
        """Close a resolved ticket; each article used counts as having resolved it (one transaction; see
        :meth:`kb.desk.workflow.Desk.close` for what is required and raised)."""
        return Handled(self.desk.close(ticket_id, closure, actor))

    def deflect(self, ticket_id: int, article_id: int, actor: str) -> Handled:
        """The suggested article was the fix: close as deflected and count the article's use (one transaction)."""
        return Handled(self.desk.deflect(ticket_id, article_id, actor))
