"""Suggestions for a ticket at intake and at escalation: articles, similar past tickets, the SLA that applies, the
responsible group, and a proposed resolver group.

- **Articles**: the knowledge base's hybrid search on the ticket's title + description (+ work notes at escalation),
  with its ``low_confidence`` flag, published articles only.
- **Similar past tickets**: closed tickets nearest by the embedding of title + description + resolution (the
  same text :mod:`kb.tickets.distill` embeds, stored on each ticket), cosine, exact (numpy over all of them).
- **Assignment**: a similarity-weighted vote of the :data:`NEIGHBOURS` nearest closed tickets' resolver groups
  (k-nearest-neighbour classification, Cover & Hart 1967); confidence = the winner's share of the vote weight.
  Measured on it-tickets-en by ``bench/assignment.py``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select

from kb.models import Ticket
from kb.search.hybrid import SearchHit, SearchRequest
from kb.sla import ServiceCatalog

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

NEIGHBOURS = 10
SIMILAR_SHOWN = 5
ARTICLES_SHOWN = 5


@dataclass(frozen=True)
class SimilarTicket:
    """A closed ticket like the one asked about: its id, title, fix, group and cosine similarity."""

    ticket_id: int
    external_id: str
    title: str
    resolution: str
    resolver_group: str | None
    similarity: float


@dataclass(frozen=True)
class Assignment:
    """The proposed resolver group, its confidence (vote share, 0-1) and every group's share."""

    group: str | None
    confidence: float
    votes: dict[str, float] = field(default_factory=dict)


def vote(groups: list[str | None], similarities: npt.NDArray[np.float32]) -> Assignment:
    """Similarity-weighted vote of neighbours' groups (negative similarities count 0)."""
    weights: dict[str, float] = defaultdict(float)
    for group, sim in zip(groups, similarities.tolist(), strict=True):
        if group:
            weights[group] += max(0.0, float(sim))
    total = sum(weights.values())
    if not total:
        return Assignment(None, 0.0)
    shares = {g: round(w / total, 4) for g, w in sorted(weights.items(), key=lambda kv: -kv[1])}
    best = next(iter(shares))
    return Assignment(best, shares[best], shares)


class ClosedTicketIndex:
    """Embeddings of closed tickets in memory, reloaded when tickets were closed or embedded since the last use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._matrix: npt.NDArray[np.float32] = np.zeros((0, 0), dtype=np.float32)
        self._rows: list[tuple[int, str, str, str, str | None]] = []

    def nearest(self, kb: KnowledgeBase, vector: npt.NDArray[np.float32], k: int) -> list[tuple[int, float]]:
        """Positions (into :meth:`row`) and cosines of the ``k`` closed tickets nearest to ``vector``."""
        with self._lock:
            self._refresh(kb)
            if not len(self._rows):
                return []
            sims = self._matrix @ vector
            top = np.argsort(-sims)[:k]
            return [(int(i), float(sims[i])) for i in top]

    def row(self, position: int) -> tuple[int, str, str, str, str | None]:
        """(id, external id, title, resolution, resolver group) of a ticket in the index."""
        return self._rows[position]

    def _refresh(self, kb: KnowledgeBase) -> None:
        model = kb.embedder.name
        embedded = (Ticket.status == "closed") & (Ticket.embedding_model == model)
        with kb.database.session() as session:
            stamp = tuple(session.execute(select(func.count(), func.max(Ticket.updated_at)).where(embedded)).one())
            if stamp == self._stamp:
                return
            rows = session.execute(
                select(
                    Ticket.id, Ticket.external_id, Ticket.title, Ticket.resolution, Ticket.resolver_group,
                    Ticket.embedding,
                ).where(embedded).order_by(Ticket.id)
            ).all()  # fmt: skip
        self._rows = [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        dim = kb.embedder.dimension
        self._matrix = (
            np.vstack([np.frombuffer(r[5] or b"", dtype=np.float32) for r in rows])
            if rows
            else np.zeros((0, dim), dtype=np.float32)
        )
        self._stamp = stamp  # type: ignore[assignment]


@dataclass
class Suggestions:
    """Everything the desk shows for a ticket (see module docstring)."""

    articles: list[SearchHit]
    low_confidence: bool
    similar: list[SimilarTicket]
    assignment: Assignment
    sla: dict[str, Any]
    group: dict[str, str]


def suggest(
    kb: KnowledgeBase, index: ClosedTicketIndex, catalog: ServiceCatalog, text: str, service: str
) -> Suggestions:
    """Suggestions for a ticket with ``text`` (title + description, work notes at escalation) and ``service``.

    Raises:
        InvalidInputError: unknown service type.
    """
    level = catalog.service(service)
    result = kb.search(SearchRequest(text[:1000], limit=ARTICLES_SHOWN))
    vector = kb.embedder.encode_passages([kb.analyzer.normalize(text)])[0]
    nearest = index.nearest(kb, vector, NEIGHBOURS)
    rows = [index.row(i) for i, _ in nearest]
    similar = [
        SimilarTicket(r[0], r[1], r[2], r[3], r[4], round(sim, 4)) for r, (_, sim) in zip(rows, nearest, strict=True)
    ][:SIMILAR_SHOWN]
    assignment = vote([r[4] for r in rows], np.array([s for _, s in nearest], dtype=np.float32))
    return Suggestions(
        articles=result.results,
        low_confidence=result.low_confidence,
        similar=similar,
        assignment=assignment,
        sla={
            "service": level.name,
            "support_hours": level.hours,
            "response_minutes": level.response_minutes,
            "resolution_minutes": level.resolution_minutes,
        },
        group={"name": level.group, "contact": level.contact},
    )
