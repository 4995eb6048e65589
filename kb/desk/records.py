"""What a caller is shown of a ticket's record: the one rule for the API's ``GET /tickets/{id}`` and the ticket page.

- The desk's own text — the work notes, the text of ``note`` and ``reopened`` events and the reason of an
  escalation — is shown only to callers who work tickets (``ticket.work``); a requester sees the facts of their
  ticket and who did what when, not what the agents wrote.
- Events name articles (``suggested``: what was suggested to the agent; ``closed``: the articles used;
  ``deflected``: the article that was the fix) and tickets (``suggested``: similar closed tickets). Only the
  articles the caller may see (:func:`kb.identity.scopes.article_visible`) and the tickets they may see
  (:func:`kb.identity.scopes.ticket_visible`) are named; a hidden single article is shown as ``None``.
- The group a ``suggested`` event proposed (a vote of the nearest closed tickets, whatever their group) is shown
  only to callers who read the desk's tickets (``ticket.groups``), as :attr:`kb.desk.suggest.Suggestions.
  shown_assignment` is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select

from kb.db import Database
from kb.identity.permissions import Permission
from kb.identity.scopes import Principal, article_visible, ticket_visible
from kb.models import Article, Ticket, TicketEvent

#: Event fields that hold the desk's own text (hidden from callers who do not work tickets).
DESK_TEXT = ("text", "reason")


def shows_work_notes(viewer: Principal) -> bool:
    """Whether ``viewer`` is shown the work notes and the desk's text in events (``ticket.work``)."""
    return viewer.may(Permission.TICKET_WORK)


def _ids(values: Iterable[Any]) -> set[int]:
    return {v for v in values if isinstance(v, int) and not isinstance(v, bool)}


def event_views(database: Database, viewer: Principal, events: Sequence[TicketEvent]) -> list[dict[str, Any]]:
    """``events`` (oldest first) as ``{"kind", "actor", "at", **data}`` for ``viewer`` (rules in the module
    docstring)."""
    articles: set[int] = set()
    tickets: set[int] = set()
    for event in events:
        articles |= _ids([*(event.data.get("articles") or []), event.data.get("article")])
        tickets |= _ids(event.data.get("similar") or [])
    with database.session() as session:
        seen_articles = {
            a.id
            for a in session.scalars(select(Article).where(Article.id.in_(articles)))
            if article_visible(viewer, a.visibility, a.restricted_to or ())
        }
        seen_tickets = {
            t.id for t in session.scalars(select(Ticket).where(Ticket.id.in_(tickets))) if ticket_visible(viewer, t)
        }
    desk_text = shows_work_notes(viewer)
    views = []
    for event in events:
        data = dict(event.data)
        if "articles" in data and isinstance(data["articles"], list):
            data["articles"] = [a for a in data["articles"] if a in seen_articles]
        if "article" in data and data["article"] not in seen_articles:
            data["article"] = None
        if "similar" in data and isinstance(data["similar"], list):
            data["similar"] = [t for t in data["similar"] if t in seen_tickets]
        if not desk_text:
            for key in DESK_TEXT:
                data.pop(key, None)
        if event.kind == "suggested" and not viewer.may(Permission.TICKET_GROUPS):
            data.pop("group", None)  # the proposed group is a vote of other people's tickets (Suggestions)
        views.append({"kind": event.kind, "actor": event.actor, "at": event.created_at.isoformat(), **data})
    return views
