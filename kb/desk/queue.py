"""The ticket queue: the desk's tickets filtered (status, tier, service, channel) to those the caller may see,
sorted and cut into pages by a keyset cursor, for ``GET /tickets`` and the queue page.

A cursor is an opaque URL-safe string naming the last ticket of the previous page (its sort value and id), so a
page never repeats or skips a ticket when tickets are added between requests (keyset pagination).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select, and_, or_, select

from kb.db import Database
from kb.desk.workflow import SOURCE
from kb.errors import InvalidInputError
from kb.identity.scopes import Principal, ticket_clause
from kb.models import Ticket, as_utc

#: Sort orders: ``-opened`` newest first (default), ``due`` the nearest resolution deadline first (none last).
SORTS = ("-opened", "due")
#: Most tickets one page holds.
MAX_PAGE = 200


@dataclass(frozen=True)
class TicketQuery:
    """Which tickets: each filter a set of allowed values (empty: any); ``viewer`` the caller, whose tickets
    only are listed (:func:`kb.identity.scopes.ticket_clause`; None: the system itself, every ticket); ``sort`` one
    of :data:`SORTS`; ``cursor`` from the previous page; ``limit`` 1..:data:`MAX_PAGE`."""

    statuses: Sequence[str] = ()
    tiers: Sequence[str] = ()
    services: Sequence[str] = ()
    channels: Sequence[str] = ()
    viewer: Principal | None = None
    sort: str = "-opened"
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class TicketPage:
    """One page of tickets and the cursor of the next one (None on the last page)."""

    items: list[Ticket] = field(default_factory=list)
    next_cursor: str | None = None


def _encode(value: str | None, ticket_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([value, ticket_id]).encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[dt.datetime | None, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, ticket_id = raw
        if not isinstance(ticket_id, int) or not (value is None or isinstance(value, str)):
            raise ValueError(cursor)
        return (as_utc(dt.datetime.fromisoformat(value)) if value else None), ticket_id
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidInputError("The cursor is not one this server gave out; start again without it.") from exc


def _filtered(query: TicketQuery) -> Select[Ticket]:
    stmt = select(Ticket).where(Ticket.source == SOURCE)
    for column, values in (
        (Ticket.status, query.statuses),
        (Ticket.tier, query.tiers),
        (Ticket.service, query.services),
        (Ticket.channel, query.channels),
    ):
        if values:
            stmt = stmt.where(column.in_(list(values)))
    if query.viewer is not None:
        stmt = stmt.where(ticket_clause(query.viewer))
    return stmt


def list_tickets(database: Database, query: TicketQuery) -> TicketPage:
    """One page of the queue (module docstring).

    Raises:
        InvalidInputError: unknown sort, a limit out of range, or a cursor this server did not give out.
    """
    if query.sort not in SORTS:
        raise InvalidInputError(f"sort must be one of {', '.join(SORTS)}, not {query.sort!r}.")
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}.")
    stmt = _filtered(query)
    after = _decode(query.cursor) if query.cursor else None
    if query.sort == "-opened":
        if after is not None:
            stmt = stmt.where(Ticket.id < after[1])
        stmt = stmt.order_by(Ticket.id.desc())
    else:
        due = Ticket.resolution_due
        if after is not None:
            value, last = after
            if value is None:
                stmt = stmt.where(and_(due.is_(None), Ticket.id > last))
            else:
                stmt = stmt.where(or_(due > value, and_(due == value, Ticket.id > last), due.is_(None)))
        stmt = stmt.order_by(due.is_(None), due, Ticket.id)
    with database.session() as session:
        rows = list(session.scalars(stmt.limit(query.limit + 1)))
    items = rows[: query.limit]
    if len(rows) <= query.limit:
        return TicketPage(items)
    last_ticket = items[-1]
    key = as_utc(last_ticket.resolution_due).isoformat() if last_ticket.resolution_due else None
    return TicketPage(items, _encode(key if query.sort == "due" else None, last_ticket.id))
