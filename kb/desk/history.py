"""A desk history replayed into a knowledge base: resolved tickets, each linked to the article that fixed it.

A history file is JSON lines (``bench/data/desk-history/tickets.jsonl``), one resolved ticket a line::

    {"id": "H0001", "title": "...", "description": "...", "article": "<collection>/<source path>",
     "channel": "phone", "opened_at": "2026-05-18T19:34:00+08:00", "closed_at": "2026-05-20T11:59:00+08:00",
     "requester": "..."}

:func:`replay_history` puts each ticket through the desk's own workflow (:class:`kb.desk.workflow.Desk`), as an
agent would, with the desk's clock set to the ticket's own times: opened (``new``) at ``opened_at``, assigned to
the service's resolver group, worked (``in_progress``), ``resolved``, then closed at ``closed_at`` with the
article as the one used to resolve it, so the close writes the ``resolved`` article-usage row dated
``closed_at``. Then the closed tickets' embeddings are stored (:meth:`kb.desk.similar.TicketVectors.embed_closed`)
so that the similar-ticket index, and with it the resolved-ticket vote of search (:mod:`kb.search.rerank.boost`),
finds them. The history holds no resolution text: each ticket is closed with :data:`RESOLUTION`, the same
sentence for all, so the similarity of tickets is their requester's words alone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from kb.db import Database
from kb.desk.similar import TicketVectors
from kb.desk.workflow import Closure, Desk, NewTicket
from kb.errors import InvalidInputError
from kb.identity.names import HISTORY_ACTOR
from kb.models import Ticket

#: Resolution and root cause written on every replayed ticket (the history does not hold them).
RESOLUTION = "按知识库文章处理，已解决"
ROOT_CAUSE = "见知识库文章"
#: Service type of the replayed tickets (a catalog key, :mod:`kb.desk.sla`): its group works them.
SERVICE = "daily_service"
ACTOR = HISTORY_ACTOR  # a name no account may take (kb.identity.names.RESERVED_NAMES)
FIELDS = ("id", "title", "description", "article", "channel", "opened_at", "closed_at")


@dataclass(frozen=True)
class HistoryTicket:
    """One resolved ticket of a history: ``article`` is the corpus id (``collection/source_path``) of the
    article that resolved it; times are timezone-aware."""

    id: str
    title: str
    description: str
    article: str
    channel: str
    opened_at: dt.datetime
    closed_at: dt.datetime
    requester: str | None = None


@dataclass(frozen=True)
class Replayed:
    """What :func:`replay_history` did: tickets ``closed`` through the desk, ``skipped`` (already in the
    knowledge base, by number), ``unmapped`` (their article is not in it), and ``encoded`` embeddings."""

    closed: int
    skipped: int
    unmapped: int
    encoded: int


def read_history(path: Path) -> list[HistoryTicket]:
    """The tickets of a history file (module docstring), ordered by ``closed_at`` (then id).

    Raises:
        InvalidInputError: the file cannot be read, a line is not a JSON object with :data:`FIELDS`, a time is not
            ISO 8601 with an offset, or a ticket closes before it opens.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidInputError(f"Cannot read the desk history {path}: {exc}") from exc
    tickets = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            missing = [f for f in FIELDS if not isinstance(row.get(f), str)]
            if missing:
                raise ValueError(f"missing or not text: {', '.join(missing)}")
            opened, closed = dt.datetime.fromisoformat(row["opened_at"]), dt.datetime.fromisoformat(row["closed_at"])
            if opened.tzinfo is None or closed.tzinfo is None or closed < opened:
                raise ValueError("times need an offset and closed_at must not precede opened_at")
        except (ValueError, AttributeError) as exc:
            raise InvalidInputError(f"{path} line {n}: {exc}") from exc
        tickets.append(
            HistoryTicket(
                row["id"],
                row["title"],
                row["description"],
                row["article"],
                row["channel"],
                opened,
                closed,
                row.get("requester") if isinstance(row.get("requester"), str) else None,
            )
        )
    return sorted(tickets, key=lambda t: (t.closed_at, t.id))


def replay_history(
    desk: Desk, vectors: TicketVectors, tickets: Sequence[HistoryTicket], article_ids: Mapping[str, int]
) -> Replayed:
    """Open, work and close each of ``tickets`` through ``desk`` at its own times (module docstring), with the
    article ``article_ids[ticket.article]`` (corpus id -> the knowledge base's article id) as the one that resolved
    it; a ticket whose number is already in the knowledge base is skipped, one whose article is not mapped is left
    out. The desk's clock is restored afterwards. Each ticket is its own transactions (the workflow's).

    Raises:
        InvalidInputError: a ticket the workflow refuses (e.g. an unknown channel); the tickets before it stay.
    """
    database: Database = desk.database
    with database.session() as session:
        known = set(session.scalars(select(Ticket.external_id).where(Ticket.external_id.in_([t.id for t in tickets]))))
    group = desk.catalog.service(SERVICE).group
    clock, now = desk.clock, _Clock()
    desk.clock = now
    closed = unmapped = 0
    try:
        for ticket in tickets:
            if ticket.id in known:
                continue
            article = article_ids.get(ticket.article)
            if article is None:
                unmapped += 1
                continue
            now.at = ticket.opened_at
            intake = NewTicket(
                ticket.title,
                ticket.description,
                SERVICE,
                ticket.channel,
                ticket.requester,
                opened_at=ticket.opened_at,
                external_id=ticket.id,
            )
            opened = desk.open(intake, ACTOR)
            desk.assign(opened.id, group, ACTOR)
            desk.move(opened.id, "in_progress", ACTOR)
            desk.move(opened.id, "resolved", ACTOR)
            now.at = ticket.closed_at
            desk.close(opened.id, Closure(RESOLUTION, ROOT_CAUSE, articles=(article,)), ACTOR)
            closed += 1
    finally:
        desk.clock = clock
    return Replayed(closed, len(known), unmapped, vectors.embed_closed())


class _Clock:
    """The replay's "now": the time of the ticket step being replayed."""

    def __init__(self) -> None:
        self.at = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.at
