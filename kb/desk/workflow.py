"""The ticket workflow of the desk's closed loop (受理 → 分配 → 处理 → 跟踪 → 反馈 → 结束, DOMAIN.md).

Statuses and the moves between them (:data:`TRANSITIONS`)::

    new         -> assigned, closed (deflected at intake only)
    assigned    -> in_progress, pending
    in_progress -> pending, resolved
    pending     -> in_progress
    resolved    -> closed, in_progress (reopened)
    closed      -> (none)

Assignment (and reassignment) is allowed in any open status, to groups and people the desk knows
(:mod:`kb.desk.resolver_groups`); escalation moves L1 → L2 → L3. Closing needs a resolution and a root cause. Text
is stored without NUL and control characters (:mod:`kb.ingest.intake_text`), whatever the channel. Every change is one
transaction with its :class:`kb.models.TicketEvent`, so the audit trail and the ticket never disagree.

SLA targets come from the service catalog (:mod:`kb.desk.sla`): ``response_due`` and ``resolution_due`` are set at
intake in support time; the first assignment or status change counts as the response.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kb.articles.feedback import add_usage, require_article
from kb.db import Database
from kb.desk.resolver_groups import ResolverGroups
from kb.desk.sla import ServiceCatalog
from kb.errors import ConflictError, InvalidInputError, NotFoundError, TransitionError
from kb.ingest.intake_text import clean_fields, clean_text
from kb.ingest.mapping import TICKET_CHANNELS
from kb.ingest.ticket_numbers import DESK_SOURCE, desk_number
from kb.models import Ticket, TicketEvent, TicketMessage, utcnow

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("assigned", "closed"),
    "assigned": ("in_progress", "pending"),
    "in_progress": ("pending", "resolved"),
    "pending": ("in_progress",),
    "resolved": ("closed", "in_progress"),
    "closed": (),
}
TIERS = ("L1", "L2", "L3")
OPEN = ("new", "assigned", "in_progress", "pending", "resolved")
SOURCE = DESK_SOURCE  # kb.ingest.ticket_numbers.DESK_SOURCE, named here for the desk


@dataclass(frozen=True)
class NewTicket:
    """A new ticket as taken in: ``service`` is a catalog key or name; ``channel`` one of web, email, im, phone,
    api; ``opened_at`` defaults to now; ``assignee`` the desk agent who logged it (:meth:`kb.desk.intake.TicketDesk.
    take_in`), None for most."""

    title: str
    description: str
    service: str
    channel: str = "web"
    requester: str | None = None
    priority: str | None = None
    configuration_item: str | None = None
    category: str | None = None
    opened_at: dt.datetime | None = None
    external_id: str | None = None
    assignee: str | None = None


@dataclass(frozen=True)
class Closure:
    """How a ticket was resolved: ``resolution`` and ``root_cause`` are required, ``satisfaction`` 1-5 and its
    ``comment`` optional, ``articles`` the ids of the articles used to resolve it."""

    resolution: str
    root_cause: str
    satisfaction: int | None = None
    comment: str = ""
    articles: tuple[int, ...] = ()


class Desk:
    """Ticket workflow over the database (thread-safe: a session per call)."""

    def __init__(self, database: Database, catalog: ServiceCatalog, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.database = database
        self.catalog = catalog
        self.groups = ResolverGroups(catalog)  # which groups and people a ticket may be assigned to
        self.clock = clock  # what "now" is: the wall clock, or a replay's simulated time (bench/desk_replay.py)

    def _now(self) -> dt.datetime:
        # UTC always: SQLite stores the wall-clock time and drops the offset.
        return self.clock().astimezone(dt.UTC)

    @contextmanager
    def _ticket(self, ticket_id: int) -> Iterator[tuple[Session, Ticket]]:
        with self.database.session() as session:
            ticket = session.get(Ticket, ticket_id, with_for_update=True)
            if ticket is None:
                raise NotFoundError(f"Ticket {ticket_id} does not exist.")
            yield session, ticket

    def open(
        self,
        intake: NewTicket,
        actor: str,
        *,
        suggested: dict[str, Any] | None = None,
        message_key: str | None = None,
        follows: int | None = None,
    ) -> Ticket:
        """Open a ticket (status ``new``, tier L1, SLA targets from the catalog), in one transaction with its
        ``created`` event, the ``suggested`` event (``suggested``: what was shown) and the channel's message key
        (so replies thread onto it); ``follows``: the closed ticket this one follows up (event ``follow_up`` on
        both). Call it through :class:`kb.desk.intake.TicketDesk`.

        Raises:
            InvalidInputError: unknown service type or channel, empty title.
        """
        intake = clean_fields(intake)
        level = self.catalog.service(intake.service)
        if intake.channel not in TICKET_CHANNELS:
            raise InvalidInputError(f"Unknown channel {intake.channel!r}; use one of {', '.join(TICKET_CHANNELS)}.")
        if not intake.title.strip():
            raise InvalidInputError("A ticket needs a title.")
        # Stored in UTC: SQLite keeps the wall-clock time and drops the offset.
        opened = (intake.opened_at or self._now()).astimezone(dt.UTC)
        calendar = self.catalog.calendar(level)
        with self.database.session() as session:
            ticket = Ticket(
                source=SOURCE,
                external_id=intake.external_id or f"tmp-{self._now().timestamp()}",
                title=intake.title.strip()[:500],
                description=intake.description,
                category=intake.category,
                service=level.name,
                configuration_item=intake.configuration_item,
                priority=intake.priority,
                channel=intake.channel,
                requester=intake.requester,
                status="new",
                tier="L1",
                resolver_group=level.group,
                assignee=intake.assignee,
                opened_at=opened,
                response_due=calendar.add(opened, level.response_minutes).astimezone(dt.UTC),
                resolution_due=calendar.add(opened, level.resolution_minutes).astimezone(dt.UTC),
                content_hash="",
                created_at=self._now(),
                updated_at=self._now(),
            )
            session.add(ticket)
            session.flush()
            if intake.external_id is None:
                ticket.external_id = desk_number(ticket.id)
            _event(session, ticket, "created", actor, self._now(), channel=intake.channel, service=level.name)
            if suggested is not None:
                _event(session, ticket, "suggested", actor, self._now(), **suggested)
            if message_key:
                self._remember(session, message_key, ticket.id)
            if follows is not None:
                old = session.get(Ticket, follows)
                if old is None:
                    raise NotFoundError(f"Ticket {follows} does not exist.")
                _event(session, ticket, "follow_up", actor, self._now(), of=old.id, number=old.external_id)
                _event(session, old, "follow_up", actor, self._now(), by=ticket.id, number=ticket.external_id)
            return ticket

    def reopen(self, ticket_id: int, text: str, actor: str, *, message_key: str | None = None) -> Ticket:
        """Reopen a closed ticket with a message from its requester: status ``in_progress`` (back with its
        resolver group), ``closed_at`` cleared, the text appended as a work note; event ``reopened``.

        Raises:
            NotFoundError: no such ticket. ConflictError: the ticket is not closed.
        """
        text = clean_text(text)
        with self._ticket(ticket_id) as (session, ticket):
            if ticket.status != "closed":
                raise ConflictError(f"Ticket {ticket_id} is not closed.")
            ticket.status, ticket.closed_at, ticket.deflected = "in_progress", None, False
            stamp = self._now().strftime("%Y-%m-%d %H:%M")
            ticket.work_notes = (ticket.work_notes + "\n" if ticket.work_notes else "") + f"[{stamp} {actor}] {text}"
            _event(session, ticket, "reopened", actor, self._now(), text=text)
            if message_key:
                self._remember(session, message_key, ticket.id)
            return ticket

    def get(self, ticket_id: int) -> Ticket:
        """One ticket.

        Raises:
            NotFoundError: no such ticket.
        """
        with self.database.session() as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None:
                raise NotFoundError(f"Ticket {ticket_id} does not exist.")
            return ticket

    def open_tickets(self) -> list[Ticket]:
        """The desk's tickets that are not closed (imported tickets are history, not work), oldest first."""
        with self.database.session() as session:
            query = select(Ticket).where(Ticket.status.in_(OPEN), Ticket.source == SOURCE).order_by(Ticket.id)
            return list(session.scalars(query))

    def events(self, ticket_id: int) -> list[TicketEvent]:
        """The ticket's audit trail, oldest first."""
        self.get(ticket_id)
        with self.database.session() as session:
            query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
            return list(session.scalars(query))

    def assign(self, ticket_id: int, group: str, actor: str, *, assignee: str | None = None) -> Ticket:
        """Assign (or reassign) to a resolver group and optionally a person; a new ticket becomes ``assigned``.
        The group must be one the desk knows and the person an enabled member of it who works tickets
        (:mod:`kb.desk.resolver_groups`); a refused assignment changes nothing.

        Raises:
            NotFoundError, ConflictError (closed ticket), InvalidInputError (empty group), UnknownGroupError,
            UnknownAssigneeError, AssigneeNotInGroupError (422 each).
        """
        if not group.strip():
            raise InvalidInputError("Assign to a resolver group.")
        with self._ticket(ticket_id) as (session, ticket):
            _require_open(ticket)
            group, assignee = self.groups.check(session, group, assignee)
            before = ticket.resolver_group
            kind = "reassigned" if ticket.status != "new" and before != group else "assigned"
            ticket.resolver_group, ticket.assignee = group, assignee
            if ticket.status == "new":
                ticket.status = "assigned"
            _responded(ticket, self._now())
            _event(session, ticket, kind, actor, self._now(), **{"from": before, "to": group, "assignee": assignee})
            return ticket

    def escalate(
        self,
        ticket_id: int,
        actor: str,
        *,
        reason: str,
        group: str | None = None,
        suggested: dict[str, Any] | None = None,
    ) -> Ticket:
        """Raise the support line (L1 → L2 → L3), optionally to another group, with the ``suggested`` event in the
        same transaction.

        Raises:
            ConflictError: already at L3, or the ticket is closed. UnknownGroupError: ``group`` is not a group the
            desk knows (:mod:`kb.desk.resolver_groups`; nothing changes).
        """
        reason = clean_text(reason)
        with self._ticket(ticket_id) as (session, ticket):
            _require_open(ticket)
            if ticket.tier == TIERS[-1]:
                raise ConflictError(f"Ticket {ticket_id} is already at {TIERS[-1]}.")
            if group and group.strip():
                ticket.resolver_group = self.groups.check(session, group)[0]
            before = ticket.tier
            ticket.tier = TIERS[TIERS.index(ticket.tier) + 1]
            moved = {"from": before, "to": ticket.tier, "reason": reason}
            _event(session, ticket, "escalated", actor, self._now(), **moved)
            if suggested is not None:
                _event(session, ticket, "suggested", actor, self._now(), **suggested)
            return ticket

    def note(self, ticket_id: int, text: str, actor: str, *, message_key: str | None = None) -> Ticket:
        """Add a work note (appended to ``work_notes`` and recorded as an event); ``message_key``: the channel
        message it came from, remembered in the same transaction."""
        text = clean_text(text)
        if not text.strip():
            raise InvalidInputError("A note needs text.")
        with self._ticket(ticket_id) as (session, ticket):
            _require_open(ticket)
            stamp = self._now().strftime("%Y-%m-%d %H:%M")
            ticket.work_notes = (ticket.work_notes + "\n" if ticket.work_notes else "") + f"[{stamp} {actor}] {text}"
            _event(session, ticket, "note", actor, self._now(), text=text)
            if message_key:
                self._remember(session, message_key, ticket.id)
            return ticket

    def move(self, ticket_id: int, status: str, actor: str) -> Ticket:
        """Change status along :data:`TRANSITIONS` (closing goes through :meth:`close`).

        Raises:
            TransitionError: not allowed (409 with the allowed moves).
        """
        if status == "closed":
            raise InvalidInputError("Close a ticket with its resolution and root cause (POST /tickets/{id}/close).")
        with self._ticket(ticket_id) as (session, ticket):
            _check(ticket.status, status)
            before, ticket.status = ticket.status, status
            _responded(ticket, self._now())
            _event(session, ticket, "status", actor, self._now(), **{"from": before, "to": status})
            return ticket

    def close(self, ticket_id: int, closure: Closure, actor: str) -> Ticket:
        """Close a resolved ticket (see :class:`Closure`); the articles used are each counted as "used to resolve"
        this ticket, in the same transaction.

        Raises:
            NotFoundError: no such ticket or article (nothing changes).
            InvalidInputError: missing resolution or root cause, satisfaction out of range.
            TransitionError: the ticket is not resolved.
        """
        closure = clean_fields(closure)
        if not closure.resolution.strip() or not closure.root_cause.strip():
            raise InvalidInputError("Closing a ticket needs its resolution and its root cause.")
        if closure.satisfaction is not None and not 1 <= closure.satisfaction <= 5:
            raise InvalidInputError("Satisfaction is 1 to 5.")
        articles = list(closure.articles)
        with self._ticket(ticket_id) as (session, ticket):
            for article_id in articles:
                require_article(session, article_id)  # 404 before anything else is said
            _check(ticket.status, "closed")
            if ticket.status == "new":  # only deflection closes a new ticket: closing it names the other move
                raise TransitionError("A ticket", "new", "closed", [m for m in TRANSITIONS["new"] if m != "closed"])
            ticket.status, ticket.closed_at = "closed", self._now()
            ticket.resolution, ticket.root_cause = closure.resolution, closure.root_cause
            ticket.satisfaction, ticket.satisfaction_comment = closure.satisfaction, closure.comment
            for article_id in articles:
                add_usage(session, article_id, "resolved", actor, ticket=ticket.external_id, at=ticket.closed_at)
            _event(session, ticket, "closed", actor, self._now(), articles=articles, satisfaction=closure.satisfaction)
            return ticket

    def deflect(self, ticket_id: int, article_id: int, actor: str) -> Ticket:
        """The requester or agent marked a suggested article as the fix: the ticket closes as deflected (工单拦截)
        and the article's use is counted, in one transaction.

        Raises:
            NotFoundError: no such ticket or article.
            TransitionError: the ticket is no longer new.
        """
        with self._ticket(ticket_id) as (session, ticket):
            if ticket.status != "new":
                raise _illegal(ticket.status, "closed")
            ticket.status, ticket.closed_at, ticket.deflected = "closed", self._now(), True
            ticket.resolution = ticket.resolution or f"按知识库文章 #{article_id} 自助解决（工单拦截）"
            ticket.root_cause = ticket.root_cause or "见知识库文章"
            _responded(ticket, self._now())
            add_usage(session, article_id, "resolved", actor, ticket=ticket.external_id, at=ticket.closed_at)
            _event(session, ticket, "deflected", actor, self._now(), article=article_id)
            return ticket

    def thread_of(self, message_keys: list[str], number: str | None) -> int | None:
        """The ticket a message belongs to: one holding any of ``message_keys`` (e-mail Message-IDs, bot message
        ids), else the desk ticket numbered ``number``; None for a new conversation."""
        with self.database.session() as session:
            if message_keys:
                found = session.scalar(
                    select(TicketMessage.ticket_id).where(TicketMessage.message_id.in_(message_keys))
                )
                if found is not None:
                    return int(found)
            if number:
                found = session.scalar(select(Ticket.id).where(Ticket.source == SOURCE, Ticket.external_id == number))
                if found is not None:
                    return int(found)
        return None

    def _remember(self, session: Session, key: str, ticket_id: int) -> None:
        """Record that the message ``key`` belongs to ``ticket_id`` (so replies to it thread onto the ticket)."""
        if session.get(TicketMessage, key) is None:
            session.add(TicketMessage(message_id=key, ticket_id=ticket_id, created_at=self._now()))

    def set_sla_state(self, ticket_id: int, state: str, actor: str) -> None:
        """Record a new SLA state (``ok``, ``at_risk``, ``breached``) with its event."""
        with self._ticket(ticket_id) as (session, ticket):
            before, ticket.sla_state = ticket.sla_state, state
            _event(session, ticket, "sla", actor, self._now(), **{"from": before, "to": state})


def _event(session: Session, ticket: Ticket, kind: str, actor: str, now: dt.datetime, **data: Any) -> None:
    ticket.updated_at = now
    session.add(TicketEvent(ticket_id=ticket.id, kind=kind, actor=actor, created_at=now, data=data))


def _check(current: str, requested: str) -> None:
    if requested not in TRANSITIONS.get(current, ()):
        raise _illegal(current, requested)


def _illegal(current: str, requested: str) -> TransitionError:
    return TransitionError("A ticket", current, requested, TRANSITIONS.get(current, ()))


def _require_open(ticket: Ticket) -> None:
    if ticket.status == "closed":
        raise ConflictError(f"Ticket {ticket.id} is closed.")


def _responded(ticket: Ticket, now: dt.datetime) -> None:
    if ticket.responded_at is None:
        ticket.responded_at = now
