"""The desk's use cases: the one way a ticket is opened, followed up, escalated, closed or deflected.

Every channel — the web form and API (``POST /tickets``), e-mail over SMTP (:mod:`kb.desk.channels.email`), the IM
webhook (:mod:`kb.desk.channels.im`) and the hotline (an agent logging the call through the API, channel ``phone``)
— parses its input into a :class:`~kb.desk.workflow.NewTicket` and calls :meth:`TicketDesk.take_in`; the same text
gets the same suggestions on every channel, and they are recorded on the ticket in the transaction that creates it.
Escalation (by an agent or by the SLA clock) searches and encodes once and records what it suggested in the
transaction that raises the line.

Rules every channel gets here, in one place: text is cleaned (:func:`kb.ingest.intake_text.clean_text`: NUL and
control characters removed; the workflow applies the same rule to every text it stores), one length limit applies
(``intake_max_text_chars``; longer is :class:`~kb.errors.PayloadTooLargeError`, which each channel answers its own
way: HTTP 413, SMTP 552), a channel message already taken in (same e-mail
Message-ID, same IM message id) is not taken in again, and a reply to a closed ticket is never refused: it reopens
the ticket when it was closed within ``reopen_within_days``, else it opens a follow-up ticket linked to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from kb.desk.senders import may_write, refuse
from kb.desk.suggest import Suggester, Suggestions
from kb.desk.workflow import Closure, Desk, NewTicket
from kb.errors import InvalidInputError, PayloadTooLargeError
from kb.identity.audit import AuditContext, AuditTrail
from kb.identity.permissions import Permission
from kb.identity.scopes import CHANNEL, Principal
from kb.ingest.intake_text import clean_text
from kb.models import Ticket, as_utc, utcnow


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
    #: How a channel message was recorded: ``opened``, ``noted``, ``reopened``, ``follow_up`` (a new ticket
    #: linked to a closed one) or ``duplicate`` (already taken in; nothing written).
    outcome: str = "opened"


class TicketDesk:
    """Use cases over the ticket workflow.

    Args:
        desk: the workflow (transactions, transitions, audit trail).
        suggester: suggestions for a ticket text.
        max_text_chars: longest text taken in from any channel (title + description, or a reply), characters.
        reopen_within: a reply to a ticket closed less than this ago reopens it; later, a follow-up ticket.
        audit: where a channel message refused on a ticket is audited (:func:`kb.desk.senders.refuse`).
    """

    def __init__(
        self,
        desk: Desk,
        suggester: Suggester,
        *,
        max_text_chars: int = 20_000,
        reopen_within: dt.timedelta = dt.timedelta(days=7),
        audit: AuditTrail | None = None,
    ) -> None:
        self.audit = audit
        self.desk = desk
        self.suggester = suggester
        self.max_text_chars = max_text_chars
        self.reopen_within = reopen_within

    def _bounded(self, *texts: str) -> None:
        size = sum(len(t) for t in texts)
        if size > self.max_text_chars:
            raise PayloadTooLargeError(
                f"The text is {size} characters; a ticket or reply takes at most {self.max_text_chars}."
            )

    def _duplicate(self, message_key: str | None) -> Handled | None:
        known = self.desk.thread_of([message_key], None) if message_key else None
        return Handled(self.desk.get(known), outcome="duplicate") if known is not None else None

    def message_key_for(self, sender: str, message_key: str | None) -> str | None:
        """The key under which a channel message from ``sender`` is remembered and deduplicated: ``message_key``
        (an e-mail Message-ID, ``onebot:<message_id>``) itself unless a ticket ``sender`` may not write
        (:func:`kb.desk.senders.may_write`) holds it already; then ``"<message_key> <sender>"`` (at most 500
        characters, the column's size), so a key reused by another sender never answers, or threads onto, the
        first sender's ticket (found by session 8's outside tester: QQ user 444 sending message_id 7001, already
        used by 333, was dropped and told 333's ticket number), while a second delivery from either sender is
        still a duplicate of their own."""
        if not message_key:
            return message_key
        known = self.desk.thread_of([message_key], None)
        if known is None or may_write(self.desk.database, self.desk.get(known), sender):
            return message_key
        return _qualified(message_key, sender)

    def thread_for(
        self,
        sender: str,
        message_keys: list[str],
        number: str | None,
        *,
        actor: str,
        channel: str,
        message_key: str | None = None,
    ) -> int | None:
        """The ticket a channel message from ``sender`` continues: the one holding a quoted message key or numbered
        ``number`` (:meth:`kb.desk.workflow.Desk.thread_of`; a quoted key held qualified by ``sender``,
        :meth:`message_key_for`, first), when ``sender`` may write it
        (:func:`kb.desk.senders.may_write`); None: the message opens a new ticket. A named number that is not
        ``sender``'s to write (or does not exist) is audited as ``ticket.thread`` denied, by ``actor`` on
        ``channel``; the caller answers as for any new ticket, so the answer says nothing about the number. A
        ``message_key`` (the message's own) already taken in answers None unaudited: taking it in again answers it
        as a duplicate."""
        if (not message_keys and not number) or self._duplicate(message_key) is not None:
            return None
        own = [_qualified(key, sender) for key in message_keys]  # a quoted message of theirs kept qualified
        ticket_id = (self.desk.thread_of(own, None) if own else None) or self.desk.thread_of(message_keys, number)
        context = AuditContext(actor, channel=channel)
        if ticket_id is None:
            if number:
                refuse(self.audit, context, sender, number, "no such ticket")
            return None
        ticket = self.desk.get(ticket_id)
        if may_write(self.desk.database, ticket, sender):
            return ticket_id
        refuse(self.audit, context, sender, ticket.external_id, "neither its requester nor a desk account on it")
        return None

    def suggest(self, title: str, description: str, service: str, *, viewer: Principal = CHANNEL) -> Suggestions:
        """Suggestions for a ticket that lives elsewhere (nothing is stored), as ``viewer`` may see them.

        Raises:
            InvalidInputError: unknown service type.
        """
        return self.suggester.suggest(suggestion_text(title, description), service, viewer)

    def take_in(
        self,
        new: NewTicket,
        actor: str,
        *,
        message_key: str | None = None,
        follows: int | None = None,
        viewer: Principal = CHANNEL,
    ) -> Handled:
        """Open a ticket from any channel: text cleaned and bounded, suggestions for it (as ``viewer`` may see them:
        by default the channels', public articles only), then one transaction that creates it, records the
        suggestions and remembers the channel's ``message_key`` (e-mail Message-ID, IM message id). A
        ``message_key`` already taken in answers that ticket (outcome ``duplicate``), unchanged. ``follows``: the
        closed ticket this one follows up (linked both ways). A desk agent who logs a ticket outside their groups is
        its assignee until it is assigned (:meth:`_logged_out_of_sight`).

        Raises:
            InvalidInputError: unknown service type or channel, empty title.
            PayloadTooLargeError: title + description longer than ``max_text_chars``.
        """
        new = replace(new, title=clean_text(new.title), description=clean_text(new.description))
        self._bounded(new.title, new.description)
        if new.assignee is None and self._logged_out_of_sight(new, viewer):
            new = replace(new, assignee=viewer.username)
        duplicate = self._duplicate(message_key)
        if duplicate is not None:
            return duplicate
        found = self.suggester.suggest(suggestion_text(new.title, new.description), new.service, viewer)
        ticket = self.desk.open(new, actor, suggested=found.record(), message_key=message_key, follows=follows)
        return Handled(ticket, found, "follow_up" if follows is not None else "opened")

    def _logged_out_of_sight(self, new: NewTicket, viewer: Principal) -> bool:
        """Whether ``viewer``, a desk role logging ``new`` (a hotline call), would not see it in its service type's
        group; such a ticket gets them as its assignee (受理人) until it is assigned, so they can see and work it
        (:func:`kb.identity.scopes.ticket_visible`).

        Raises:
            InvalidInputError: unknown service type.
        """
        if not viewer.may(Permission.TICKET_GROUPS) or viewer.may(Permission.TICKET_ALL):
            return False
        return self.desk.catalog.service(new.service).group not in viewer.groups

    def follow_up(
        self,
        ticket_id: int,
        text: str,
        actor: str,
        *,
        message_key: str | None = None,
        channel: str = "web",
        requester: str | None = None,
    ) -> Handled:
        """A later message on a ticket (an e-mail reply, an IM message quoting the ticket): a work note. On a
        closed ticket: reopened when closed less than ``reopen_within`` ago, else a new ticket on ``channel`` for
        ``requester`` linked to it (outcome ``follow_up``). A ``message_key`` already taken in changes nothing.

        Raises:
            NotFoundError: no such ticket. InvalidInputError: no text.
            PayloadTooLargeError: text longer than ``max_text_chars``.
        """
        text = clean_text(text)
        self._bounded(text)
        duplicate = self._duplicate(message_key)
        if duplicate is not None:
            return duplicate
        ticket = self.desk.get(ticket_id)
        if ticket.status != "closed":
            return Handled(self.desk.note(ticket_id, text, actor, message_key=message_key), outcome="noted")
        closed_at = as_utc(ticket.closed_at) if ticket.closed_at is not None else None
        if closed_at is not None and utcnow() - closed_at <= self.reopen_within:
            return Handled(self.desk.reopen(ticket_id, text, actor, message_key=message_key), outcome="reopened")
        new = NewTicket(
            title=f"跟进 {ticket.external_id}：{ticket.title}"[:500], description=text, service=ticket.service or "",
            channel=channel, requester=requester or ticket.requester,
        )  # fmt: skip
        return self.take_in(new, actor, message_key=message_key, follows=ticket.id)

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


def _qualified(message_key: str, sender: str) -> str:
    """``message_key`` qualified by ``sender`` (:meth:`TicketDesk.message_key_for`), at most 500 characters."""
    return f"{message_key[: 499 - len(sender[:200])]} {sender[:200]}"
