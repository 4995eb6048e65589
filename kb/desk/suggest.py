"""Suggestions for a ticket at intake and at escalation: articles, similar past tickets, the SLA that applies, the
responsible group, and a proposed resolver group.

- **Articles**: the knowledge base's hybrid search on the ticket's title + description (+ work notes at escalation),
  with its ``low_confidence`` flag, published articles only.
- **Similar past tickets**: closed tickets nearest by the mean of embedding and TF-IDF cosine
  (:class:`kb.desk.similar.ClosedTicketIndex`), exact over all of them.
- **Assignment**: a similarity-weighted vote of the :data:`kb.desk.similar.NEIGHBOURS` nearest closed tickets'
  resolver groups (:func:`kb.desk.similar.vote`); measured on it-tickets-en by ``bench/assignment.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kb.articles.filters import ArticleFilter
from kb.config import MAX_QUERY_CHARS
from kb.desk.similar import Assignment, ClosedTicketIndex, SimilarTicket, TicketVectors, vote
from kb.desk.sla import ServiceCatalog
from kb.identity.permissions import Permission
from kb.identity.scopes import CHANNEL, Principal
from kb.search.engine import SearchEngine
from kb.search.results import SearchHit, SearchRequest

SIMILAR_SHOWN = 5
ARTICLES_SHOWN = 5


@dataclass(frozen=True)
class SlaTerms:
    """The SLA that applies to a service type: support hours (7x24 / 7x8 / 5x8) and targets in minutes of
    support time (response from DOMAIN.md, resolution our default)."""

    service: str
    support_hours: str
    response_minutes: int
    resolution_minutes: int


@dataclass(frozen=True)
class GroupContact:
    """The resolver group responsible for a service type and how to reach it."""

    name: str
    contact: str


@dataclass(frozen=True)
class Suggestions:
    """Everything the desk shows for a ticket (see module docstring)."""

    articles: list[SearchHit]
    low_confidence: bool
    similar: list[SimilarTicket]
    assignment: Assignment
    sla: SlaTerms
    group: GroupContact
    #: Whether the caller may see similar tickets at all (other people's tickets); they are recorded and vote
    #: either way.
    show_similar: bool = True
    #: Those of :attr:`similar` the caller may see (:meth:`ClosedTicketIndex.visible`); None: all of them.
    visible_similar: list[SimilarTicket] | None = None

    @property
    def shown_assignment(self) -> Assignment:
        """The proposed resolver group as the caller is shown it: the kNN vote over every closed ticket says which
        groups solved texts like this one, so it goes with :attr:`show_similar` (callers who read tickets);
        anyone else gets no proposal (group None, confidence 0)."""
        return self.assignment if self.show_similar else Assignment(None, 0.0)

    @property
    def shown_similar(self) -> list[SimilarTicket]:
        """The similar tickets the caller is shown: none without ``show_similar``, else the visible ones."""
        if not self.show_similar:
            return []
        return self.similar if self.visible_similar is None else self.visible_similar

    def as_dict(self) -> dict[str, Any]:
        """The JSON the API and the channels answer with."""
        return {
            "articles": [asdict(a) for a in self.articles],
            "low_confidence": self.low_confidence,
            "similar_tickets": [asdict(s) for s in self.shown_similar],
            "assignment": asdict(self.shown_assignment),
            "sla": asdict(self.sla),
            "group": asdict(self.group),
        }

    def record(self) -> dict[str, Any]:
        """What the ticket's ``suggested`` event keeps: ids, the proposed group and the confidence flag."""
        return {
            "articles": [a.article_id for a in self.articles],
            "similar": [s.ticket_id for s in self.similar],
            "group": self.assignment.group,
            "low_confidence": self.low_confidence,
        }


class Suggester:
    """Builds :class:`Suggestions` for a ticket text.

    Args:
        engine: hybrid search over published articles.
        vectors: encodes the ticket text as closed tickets are encoded.
        closed_tickets: the closed tickets to compare with.
        catalog: service types with SLA terms and groups.
    """

    def __init__(
        self, engine: SearchEngine, vectors: TicketVectors, closed_tickets: ClosedTicketIndex, catalog: ServiceCatalog
    ) -> None:
        self.engine = engine
        self.vectors = vectors
        self.closed_tickets = closed_tickets
        self.catalog = catalog

    def suggest(self, text: str, service: str, viewer: Principal = CHANNEL) -> Suggestions:
        """Suggestions for a ticket with ``text`` (title + description, work notes at escalation) and ``service``
        (catalog key or name), as ``viewer`` may see them: only the articles they may read (by default the
        e-mail / IM channel's: public ones), and similar past tickets only for callers who read tickets
        (``ticket.groups``), only those they may see (the group vote counts every one: it shows no ticket).
        One search and one encode of the text.

        Raises:
            InvalidInputError: unknown service type.
        """
        level = self.catalog.service(service)
        visible = ArticleFilter(viewer=viewer)
        result = self.engine.search(SearchRequest(text[:MAX_QUERY_CHARS], limit=ARTICLES_SHOWN, filters=visible))
        nearest = self.closed_tickets.nearest(self.vectors.encode(text), text)
        assignment = vote(
            [s.resolver_group for s in nearest], np.array([s.similarity for s in nearest], dtype=np.float32)
        )
        shown = viewer.may(Permission.TICKET_GROUPS)
        return Suggestions(
            articles=result.results,
            low_confidence=result.low_confidence,
            similar=nearest[:SIMILAR_SHOWN],
            assignment=assignment,
            sla=SlaTerms(level.name, level.hours, level.response_minutes, level.resolution_minutes),
            group=GroupContact(level.group, level.contact),
            show_similar=shown,
            visible_similar=self.closed_tickets.visible(viewer, nearest)[:SIMILAR_SHOWN] if shown else [],
        )
