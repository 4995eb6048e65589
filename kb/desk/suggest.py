"""Suggestions for a ticket at intake and at escalation: articles, similar past tickets, the SLA that applies, the
responsible group, and a proposed resolver group.

- **Articles**: the knowledge base's hybrid search on the ticket's title + description (+ work notes at escalation),
  with its ``low_confidence`` flag, published articles only.
- **Similar past tickets**: closed tickets nearest by the mean of two cosines (:class:`ClosedTicketIndex`): the
  embedding of title + description + resolution (the text :mod:`kb.desk.distill` embeds, stored on each
  ticket) and TF-IDF over kb's analyzer terms; exact (numpy / scipy over all of them).
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

from kb.desk.distill import ticket_text
from kb.desk.sla import ServiceCatalog
from kb.models import Ticket
from kb.search.results import SearchHit, SearchRequest

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
    """Closed tickets in memory for similarity: their stored embeddings and a TF-IDF matrix over kb's analyzer
    terms. Similarity is the mean of the two cosines (``bench/assignment.py``: kNN assignment accuracy 0.791 with
    the mean, 0.753 with embeddings alone, 0.774 with TF-IDF alone, on it-tickets-en). Tickets closed or embedded
    since the last use are added on the next call; the TF-IDF vocabulary and idf are fitted on the tickets present
    at the first use and kept (refitted when tickets disappear)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._matrix: npt.NDArray[np.float32] = np.zeros((0, 0), dtype=np.float32)
        self._rows: list[tuple[int, str, str, str, str | None]] = []
        self._vectorizer: Any = None
        self._tfidf: Any = None
        self._stamp: tuple[Any, ...] | None = None  # (count, max id) of the tickets indexed

    def nearest(self, kb: KnowledgeBase, vector: npt.NDArray[np.float32], text: str, k: int) -> list[tuple[int, float]]:
        """Positions (into :meth:`row`) and similarities of the ``k`` closed tickets nearest to a ticket with
        embedding ``vector`` ((d,) L2-normalised) and ``text``."""
        with self._lock:
            self._refresh(kb)
            if not self._ids:
                return []
            sims = self._matrix @ vector
            sims += np.asarray((self._tfidf @ self._vectorizer.transform([text]).T).toarray()).ravel()
            sims /= 2
            top = np.argsort(-sims)[:k]
            return [(int(i), float(sims[i])) for i in top]

    def row(self, position: int) -> tuple[int, str, str, str, str | None]:
        """(id, external id, title, resolution, resolver group) of a ticket in the index."""
        return self._rows[position]

    def _refresh(self, kb: KnowledgeBase) -> None:
        from scipy.sparse import vstack
        from sklearn.feature_extraction.text import TfidfVectorizer

        embedded = (Ticket.status == "closed") & (Ticket.embedding_model == kb.embedder.name)
        with kb.database.session() as session:
            stamp = tuple(session.execute(select(func.count(), func.max(Ticket.id)).where(embedded)).one())
            if stamp == self._stamp:
                return
            self._stamp = stamp
            ids = list(session.scalars(select(Ticket.id).where(embedded).order_by(Ticket.id)))
            known = set(self._ids)
            if set(ids) == known:
                return
            if not known <= set(ids):  # tickets disappeared: start again
                self._ids, self._rows, self._vectorizer = [], [], None
                known = set()
            fresh = [i for i in ids if i not in known]
            tickets = []
            for start in range(0, len(fresh), 5000):
                batch = fresh[start : start + 5000]
                tickets += list(session.scalars(select(Ticket).where(Ticket.id.in_(batch)).order_by(Ticket.id)))
        texts = [ticket_text(t) for t in tickets]
        vectors = np.vstack([np.frombuffer(t.embedding or b"", dtype=np.float32) for t in tickets])
        rows = [(t.id, t.external_id, t.title, t.resolution, t.resolver_group) for t in tickets]
        if self._vectorizer is None:
            self._vectorizer = TfidfVectorizer(analyzer=kb.analyzer.terms, sublinear_tf=True, dtype=np.float32)
            self._tfidf = self._vectorizer.fit_transform(texts).tocsr()
            self._matrix, self._rows, self._ids = vectors, rows, [t.id for t in tickets]
        else:
            self._tfidf = vstack([self._tfidf, self._vectorizer.transform(texts)]).tocsr()
            self._matrix = np.vstack([self._matrix, vectors])
            self._rows += rows
            self._ids += [t.id for t in tickets]


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
    nearest = index.nearest(kb, vector, text, NEIGHBOURS)
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
