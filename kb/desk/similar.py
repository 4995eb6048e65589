"""Tickets alike: the text a ticket is compared by, its stored embedding, one TF-IDF, grouping, the kNN vote.

Two similarities are used together everywhere on the desk (suggestions, assignment, distillation, frequent
problems):

- the **embedding** of :func:`ticket_text` with the ticket model (``KB_TICKET_EMBEDDING_MODEL``, by default the
  knowledge base's own model; the chunks always use the KB's), stored on the ticket (``tickets.embedding``,
  float32 bytes, with ``tickets.embedding_model`` naming the model) so a ticket is encoded once per model
  (:class:`TicketVectors`);
- **TF-IDF** over kb's analyzer terms (scikit-learn, sublinear tf, l2; :func:`fit_tfidf`).

Their mean is the similarity. ``bench/assignment.py`` measured kNN assignment accuracy on it-tickets-en at 0.791
with the mean, 0.753 with embeddings alone and 0.774 with TF-IDF alone.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
import numpy.typing as npt
from sqlalchemy import func, or_, select

from kb.db import Database
from kb.desk.workflow import SOURCE
from kb.identity.scopes import Principal, ticket_visible
from kb.ingest.redaction import holds_credential
from kb.models import Ticket
from kb.search.embedders.base import Embedder, decode_vectors
from kb.search.text import TextAnalyzer

if TYPE_CHECKING:  # scikit-learn takes ~0.7 s to import: loaded on first use, not at every process start
    from sklearn.feature_extraction.text import TfidfVectorizer

#: Neighbours that vote for a resolver group and that are candidates for "alike" pairs.
NEIGHBOURS = 10
ENCODE_BATCH = 256
Progress = Callable[[str, int, int], None]


def ticket_text(ticket: Ticket) -> str:
    """What a ticket says about the problem and its fix: title, description and resolution."""
    parts = [ticket.title]
    if ticket.description and not ticket.description.startswith(ticket.title.rstrip("…")):
        parts.append(ticket.description)
    elif ticket.description:
        parts[0] = ticket.description
    if ticket.resolution:
        parts.append(ticket.resolution)
    return "\n".join(parts)


def fit_tfidf(analyzer: TextAnalyzer, texts: Sequence[str], *, min_df: int = 1) -> tuple[TfidfVectorizer, Any]:
    """The one TF-IDF of the desk: a vectorizer fitted on ``texts`` over ``analyzer.terms`` (sublinear tf, l2,
    terms in at least ``min_df`` texts) and the (n, vocabulary) float32 CSR matrix of ``texts``.

    Raises:
        ValueError: (scikit-learn) no term is left, e.g. every text is empty or ``min_df`` removes them all.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=analyzer.terms, sublinear_tf=True, min_df=min_df, dtype=np.float32)
    return vectorizer, vectorizer.fit_transform(texts).tocsr()


class TicketVectors:
    """Stored ticket embeddings: encode the tickets that lack one for the current model, and read them.

    Args:
        database: where ``tickets.embedding`` lives.
        analyzer: normalises the text before encoding (the same normalisation as article chunks).
        embedder: the ticket model (``KB_TICKET_EMBEDDING_MODEL``; by default the knowledge base's own model);
            vectors are (d,) float32, L2-normalised.
    """

    def __init__(self, database: Database, analyzer: TextAnalyzer, embedder: Embedder) -> None:
        self.database = database
        self.analyzer = analyzer
        self.embedder = embedder

    def encode(self, text: str) -> npt.NDArray[np.float32]:
        """(d,) float32 L2-normalised passage vector of a ticket text (as stored tickets are encoded)."""
        vector: npt.NDArray[np.float32] = self.embedder.encode_passages([self.analyzer.normalize(text)])[0]
        return vector

    def ensure(self, tickets: Sequence[Ticket], say: Progress | None = None) -> int:
        """Encode and store the embedding of every ticket in ``tickets`` that has none for the current model
        (the objects are updated too); returns how many were encoded."""
        say = say or (lambda _phase, _done, _total: None)
        model = self.embedder.name
        missing = [t for t in tickets if t.embedding is None or t.embedding_model != model]
        say("encoding", 0, len(missing))
        for start in range(0, len(missing), ENCODE_BATCH):
            batch = missing[start : start + ENCODE_BATCH]
            matrix = self.embedder.encode_passages([self.analyzer.normalize(ticket_text(t)) for t in batch])
            with self.database.session() as session:
                for ticket, row in zip(batch, matrix, strict=True):
                    ticket.embedding, ticket.embedding_model = row.astype(np.float32).tobytes(), model
                    stored = session.get(Ticket, ticket.id)
                    if stored is not None:
                        stored.embedding, stored.embedding_model = ticket.embedding, model
            say("encoding", min(start + ENCODE_BATCH, len(missing)), len(missing))
        return len(missing)

    def matrix(self, tickets: Sequence[Ticket]) -> npt.NDArray[np.float32]:
        """(n, d) float32 stored vectors of ``tickets`` (call :meth:`ensure` first)."""
        return decode_vectors([t.embedding for t in tickets], self.embedder.dimension)

    def embed_closed(self, say: Progress | None = None) -> int:
        """Store embeddings for closed tickets that lack one; returns how many were encoded."""
        with self.database.session() as session:
            tickets = list(session.scalars(select(Ticket).where(Ticket.status == "closed")))
        return self.ensure(tickets, say)


def group_alike(
    vectors: npt.NDArray[np.float32], tfidf: Any, threshold: float, min_size: int
) -> list[npt.NDArray[np.int64]]:
    """Groups (row positions, largest first) of at least ``min_size`` rows linked by alike pairs: mutual
    nearest neighbours (:data:`NEIGHBOURS`) by ``vectors`` ((n, d) L2-normalised, exact inner product with faiss)
    whose mean of embedding and ``tfidf`` ((n, v) l2-normalised) cosine is at least ``threshold``; groups are the
    connected components (union-find)."""
    n = len(vectors)
    k = min(NEIGHBOURS + 1, n)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors))
    _, neighbours = index.search(np.ascontiguousarray(vectors), k)
    src = np.repeat(np.arange(n, dtype=np.int64), k)
    dst = neighbours.reshape(-1).astype(np.int64)
    ok = (dst >= 0) & (dst != src)
    lo, hi = np.minimum(src[ok], dst[ok]), np.maximum(src[ok], dst[ok])
    pairs, seen = np.unique(lo * n + hi, return_counts=True)
    mutual = pairs[seen >= 2]  # each ticket is among the other's nearest neighbours
    if not len(mutual):
        return []
    left, right = mutual // n, mutual % n
    emb_cos = np.einsum("ij,ij->i", vectors[left], vectors[right])
    text_cos = np.asarray(tfidf[left].multiply(tfidf[right]).sum(axis=1)).ravel()
    alike = (emb_cos + text_cos) / 2 >= threshold
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    for i, j in zip(left[alike].tolist(), right[alike].tolist(), strict=True):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)])
    return [np.flatnonzero(roots == r) for r, size in Counter(roots.tolist()).most_common() if size >= min_size]


@dataclass(frozen=True)
class SimilarTicket:
    """A closed ticket like the one asked about: its id, title, fix, group and similarity (mean of the two
    cosines, in [-1, 1])."""

    ticket_id: int
    external_id: str
    title: str
    resolution: str
    resolver_group: str | None
    similarity: float


@dataclass(frozen=True)
class Assignment:
    """The proposed resolver group, its confidence (vote share, 0-1) and every group's share (0-1)."""

    group: str | None
    confidence: float
    votes: dict[str, float] = field(default_factory=dict)


def vote(groups: Sequence[str | None], similarities: npt.NDArray[np.float32]) -> Assignment:
    """Similarity-weighted vote of neighbours' groups (k-nearest-neighbour classification, Cover & Hart 1967;
    negative similarities count 0)."""
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
    """Closed tickets in memory for similarity: their stored embeddings and a TF-IDF matrix (:func:`fit_tfidf`).

    Tickets closed or embedded since the last use are added on the next call: with ``vectors``, the desk's own
    tickets closed since then are encoded first (at most :data:`ENCODE_BATCH` a call), so a ticket closed through
    the workflow is a similar ticket at the next query, without waiting for ``/analysis`` or distillation to encode
    it; imported history joins once embedded (``TicketVectors.embed_closed``). Closed tickets of any source stored
    with another model (the ticket model changed) are encoded again the same way, :data:`ENCODE_BATCH` a call,
    until all are on the ticket model (a ticket takes part only with a vector of that model). The TF-IDF
    vocabulary and idf are fitted on the tickets present at the first use and kept (refitted when tickets
    disappear). Thread-safe.

    Args:
        database: the tickets.
        analyzer: TF-IDF terms.
        embedder: the ticket model (as ``vectors``'); only its ``name`` and ``dimension`` (which stored vectors
            count).
        vectors: encodes closed desk tickets that have no embedding yet and closed tickets stored with another
            model (None: only tickets already embedded with ``embedder``).
    """

    def __init__(
        self, database: Database, analyzer: TextAnalyzer, embedder: Embedder, vectors: TicketVectors | None = None
    ) -> None:
        self.vectors = vectors
        self.database = database
        self.analyzer = analyzer
        self.embedder = embedder
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._matrix: npt.NDArray[np.float32] = np.zeros((0, 0), dtype=np.float32)
        self._rows: list[SimilarTicket] = []
        self._vectorizer: TfidfVectorizer | None = None
        self._tfidf: Any = None
        self._stamp: tuple[Any, ...] | None = None  # (count, max id) of the tickets indexed

    def visible(self, viewer: Principal, similar: Sequence[SimilarTicket]) -> list[SimilarTicket]:
        """Those of ``similar`` that ``viewer`` may see (:func:`kb.identity.scopes.ticket_visible`), in order: a
        similar ticket's title and fix are the ticket's own text."""
        ids = [s.ticket_id for s in similar]
        if not ids:
            return []
        with self.database.session() as session:
            rows = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
        return [s for s in similar if (row := rows.get(s.ticket_id)) is not None and ticket_visible(viewer, row)]

    def nearest(
        self, vector: npt.NDArray[np.float32], text: str, k: int = NEIGHBOURS, allowed: Collection[int] | None = None
    ) -> list[SimilarTicket]:
        """The ``k`` closed tickets nearest to a ticket with embedding ``vector`` ((d,) L2-normalised) and
        ``text``, most similar first (``similarity`` = mean of embedding and TF-IDF cosine); with ``allowed``
        (ticket ids), the ``k`` nearest among those only (the others are never ranked, so they take no place)."""
        with self._lock:
            self._refresh()
            if not self._ids or self._vectorizer is None:
                return []
            sims = self._matrix @ vector
            sims += np.asarray((self._tfidf @ self._vectorizer.transform([text]).T).toarray()).ravel()
            sims /= 2
            keep = np.ones(len(self._ids), dtype=bool)
            if allowed is not None:
                keep = np.isin(np.asarray(self._ids, dtype=np.int64), np.fromiter(allowed, dtype=np.int64))
                sims[~keep] = -np.inf
            top = [int(i) for i in np.argsort(-sims)[:k] if keep[i]]
            rows = self._rows
        return [_with_similarity(rows[i], float(sims[i])) for i in top]

    def _encode_closed(self) -> None:
        """Encode the desk's closed tickets that have no embedding, and closed tickets of any source embedded with
        another model (:data:`ENCODE_BATCH` at most, lowest ids first)."""
        if self.vectors is None:
            return
        model = self.embedder.name
        unencoded = or_(Ticket.embedding_model.is_(None), Ticket.embedding_model != model)
        ours_or_stored = or_(Ticket.source == SOURCE, Ticket.embedding.is_not(None))
        query = select(Ticket).where(Ticket.status == "closed", unencoded, ours_or_stored)
        with self.database.session() as session:
            missing = list(session.scalars(query.order_by(Ticket.id).limit(ENCODE_BATCH)))
        if missing:
            self.vectors.ensure(missing)

    def _refresh(self) -> None:
        self._encode_closed()
        embedded = (Ticket.status == "closed") & (Ticket.embedding_model == self.embedder.name)
        with self.database.session() as session:
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
            tickets: list[Ticket] = []
            for start in range(0, len(fresh), 5000):
                batch = fresh[start : start + 5000]
                tickets += list(session.scalars(select(Ticket).where(Ticket.id.in_(batch)).order_by(Ticket.id)))
        texts = [ticket_text(t) for t in tickets]
        vectors = decode_vectors([t.embedding for t in tickets], self.embedder.dimension)
        rows = [_row(t) for t in tickets]
        if self._vectorizer is None:
            try:
                self._vectorizer, self._tfidf = fit_tfidf(self.analyzer, texts)
            except ValueError:  # no terms at all: similarity by embedding alone until tickets with text arrive
                self._stamp = None
                return
            self._matrix, self._rows, self._ids = vectors, rows, [t.id for t in tickets]
        else:
            from scipy.sparse import vstack

            self._tfidf = vstack([self._tfidf, self._vectorizer.transform(texts)]).tocsr()
            self._matrix = np.vstack([self._matrix, vectors])
            self._rows = self._rows + rows
            self._ids += [t.id for t in tickets]


#: Shown instead of the title and fix of a ticket whose text held a credential (:func:`holds_credential`).
WITHHELD = "[内容含密码，不显示]"


def _row(t: Ticket) -> SimilarTicket:
    """The shown row of a closed ticket; a ticket that held a credential still votes but shows no text."""
    if holds_credential(f"{t.title}\n{t.description}\n{t.resolution}\n{t.work_notes}"):
        return SimilarTicket(t.id, t.external_id, WITHHELD, WITHHELD, t.resolver_group, 0.0)
    return SimilarTicket(t.id, t.external_id, t.title, t.resolution, t.resolver_group, 0.0)


def _with_similarity(row: SimilarTicket, similarity: float) -> SimilarTicket:
    return SimilarTicket(
        row.ticket_id, row.external_id, row.title, row.resolution, row.resolver_group, round(similarity, 4)
    )
