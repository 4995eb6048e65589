"""The desk votes for the search ranker (:mod:`kb.search.rerank.desk`): past resolved tickets like the query, and
helpful votes.

The nearest closed tickets (:class:`kb.desk.similar.ClosedTicketIndex`: mean of embedding and TF-IDF cosine)
vote for the articles recorded as having resolved them (``article_usage`` rows with ``event = "resolved"``,
written when a ticket is closed with articles or deflected), weighted by similarity and by how long ago the
ticket closed; each candidate article's helpful / not helpful balance is added when asked
(:func:`kb.search.rerank.desk.knn_evidence` holds the formula). Only the tickets the caller may see take part,
and only the candidate articles (which the caller may see) get a vote.

Who may vote (:func:`votes_by`; found by session 8's outside tester: a requester who opened a ticket and deflected
it with an article of their choice, twice, put that article first for the desk group's agents): only a resolution
recorded by an account that works the desk's tickets, a ``users`` row whose roles grant ``ticket.work``, and who is
not the ticket's own requester; or by the desk-history replay (:data:`kb.desk.history.ACTOR`, a CLI import, when no
account has that name). Service accounts (``svc:...``), channel actors (``im:...``, ``mail:...``) and requesters
never vote; their deflections still count in the article's stats (:mod:`kb.articles.feedback`). Roles are read
with the resolutions, again whenever ``article_usage`` grows or any account's roles change
(:func:`kb.identity.audit.roles_changed`): a role taken away stops the user's votes at the next search (found by
session 8's review: they kept voting until the next resolution).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, func, select

from kb.articles.feedback import vote_counts
from kb.db import Database
from kb.desk.history import ACTOR as HISTORY_ACTOR
from kb.desk.similar import ClosedTicketIndex
from kb.identity.audit import roles_changed
from kb.identity.permissions import Permission, allowed
from kb.identity.scopes import Principal, ticket_clause
from kb.models import ArticleUsage, Ticket, User
from kb.search.embedders.base import Embedder
from kb.search.rerank.desk import MIN_SIMILARITY, DeskEvidence, knn_evidence

#: What :meth:`ResolvedTicketVotes.resolvable` compares to know that its answer still holds: the newest
#: ``article_usage`` row and the newest change of any account's roles.
_STAMP = select(select(func.max(ArticleUsage.id)).scalar_subquery(), roles_changed())

#: When the tickets of ``ids`` were closed (one statement object: SQLAlchemy's compiled cache serves every query).
_CLOSED_AT = select(Ticket.external_id, Ticket.closed_at).where(Ticket.id.in_(bindparam("ids", expanding=True)))

#: Closed tickets asked for per query.
NEIGHBOURS = 10
#: Ticket ids sent in one ``IN`` list at most (SQLite's default limit is 32,766 variables); beyond, the caller's
#: closed tickets are read whole and intersected.
IN_LIMIT = 5000


class ResolvedTicketVotes:
    """:class:`kb.search.rerank.desk.DeskVotes` over the knowledge base's own tickets and feedback.

    Args:
        database: tickets, article usage, feedback.
        closed: the closed-ticket similarity index.
        now: the clock (tests pass a fixed one).
        min_similarity: neighbours less similar do not vote (default
            :data:`kb.search.rerank.desk.MIN_SIMILARITY`, setting ``KB_TICKET_VOTE_MIN_SIMILARITY``).
        query_embedder: the ticket model when it is not the knowledge base's own (``KB_TICKET_EMBEDDING_MODEL``;
            the same model as ``closed.embedder``): the query is encoded with it for the kNN, since the vector the
            vector leg computed belongs to the chunk model. None: the tickets are on the KB's own model and that
            vector is used as it is.
    """

    def __init__(
        self,
        database: Database,
        closed: ClosedTicketIndex,
        now: Callable[[], dt.datetime] | None = None,
        min_similarity: float = MIN_SIMILARITY,
        query_embedder: Embedder | None = None,
    ) -> None:
        self.database = database
        self.closed = closed
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.min_similarity = min_similarity
        self.query_embedder = query_embedder
        self._lock = threading.Lock()
        self._stamp: tuple[int | None, int | None] | None = None
        self._resolvable: frozenset[int] = frozenset()
        self._articles: dict[str, tuple[int, ...]] = {}

    def votes(
        self,
        text: str,
        vector: npt.NDArray[np.float32] | None,
        candidates: Sequence[int],
        viewer: Principal | None = None,
        helpful: bool = True,
    ) -> DeskEvidence:
        """The votes among ``candidates`` (see module docstring and :class:`kb.search.rerank.desk.DeskVotes`):
        the :data:`NEIGHBOURS` nearest closed tickets ``viewer`` may see (:func:`kb.identity.scopes.ticket_clause`;
        the others are not ranked at all), none without a query ``vector`` (the chunk model's, (d,) float32; with a
        ``query_embedder`` the query ``text`` is encoded again with the ticket model instead). The evidence names
        the ticket model in ``model`` when a kNN ran."""
        resolvable = self.resolvable()
        if not resolvable and not helpful:
            return DeskEvidence()  # a desk that recorded no resolution: nothing to rank, no kNN at all
        if viewer is None or viewer.may(Permission.TICKET_ALL):
            allowed = resolvable
        else:
            allowed = self._visible(viewer, resolvable)
        near = []
        if vector is not None and allowed:
            if self.query_embedder is not None:
                vector = self.query_embedder.encode_queries([text])[0]
            near = self.closed.nearest(vector, text, NEIGHBOURS, allowed)
        wanted = set(candidates)
        if not near and not helpful:
            return DeskEvidence()
        with self.database.session() as session:
            resolved: dict[str, list[int]] = {}
            closed_at: dict[str, dt.datetime | None] = {}
            if near:
                by_ticket = self._voted()
                for t in near:
                    found = [aid for aid in by_ticket.get(t.external_id, ()) if aid in wanted]
                    if found:
                        resolved[t.external_id] = found
                ids = [t.ticket_id for t in near]
                rows = session.execute(_CLOSED_AT, {"ids": ids})
                closed_at = {external_id: when for external_id, when in rows}
            counts = (
                {a: (yes, total - yes) for a, (yes, total) in vote_counts(session, list(wanted)).items()}
                if helpful and wanted
                else {}
            )
        now = self.now()
        neighbours = [
            (t.external_id, t.similarity, _age_days(closed_at.get(t.external_id), now), resolved.get(t.external_id, []))
            for t in near
        ]
        evidence = knn_evidence(neighbours, counts, self.min_similarity)
        return dataclasses.replace(evidence, model=self.closed.embedder.name) if near else evidence

    def resolvable(self) -> frozenset[int]:
        """Ids of the tickets recorded as resolved by an article by someone who may vote (``article_usage``
        ``resolved`` rows, :func:`votes_by`; never by a number more than one ticket holds): the only tickets that
        can vote, so the only ones the kNN ranks (a closed ticket without an article would take a neighbour's place
        and give nothing). Read again only when ``article_usage`` has a new row (its largest id, one primary-key
        lookup per query), so a desk without resolutions pays one lookup and no kNN. Read again as well when any
        account's roles change (:func:`kb.identity.audit.roles_changed`): who may vote is a matter of roles."""
        with self.database.engine.connect() as connection:  # one statement per query, no ORM session
            stamp = tuple(connection.execute(_STAMP).one())
        with self._lock:
            if stamp == self._stamp:
                return self._resolvable
        with self.database.session() as session:
            ids: set[int] = set()
            articles: dict[str, list[int]] = {}
            rows = session.execute(
                select(Ticket.id, Ticket.external_id, Ticket.requester, ArticleUsage.article_id, ArticleUsage.actor)
                .add_columns(User.roles)
                .join(ArticleUsage, ArticleUsage.ticket == Ticket.external_id)
                .outerjoin(User, User.username == ArticleUsage.actor)
                .where(ArticleUsage.event == "resolved")
            )
            holders: dict[str, set[int]] = {}
            for ticket_id, number, requester, article_id, actor, roles in rows:
                holders.setdefault(number, set()).add(ticket_id)
                if votes_by(actor, roles, requester):
                    ids.add(ticket_id)
                    found = articles.setdefault(number, [])
                    if article_id not in found:
                        found.append(article_id)
            # A number two tickets hold (imported before kb.ingest.tickets refused that; session 9's outside
            # tester, L8) cannot say which ticket the article resolved: neither votes.
            for number, held_by in holders.items():
                if len(held_by) > 1:
                    ids -= held_by
                    articles.pop(number, None)
        frozen = frozenset(ids)
        with self._lock:
            self._stamp, self._resolvable = stamp, frozen
            self._articles = {number: tuple(aids) for number, aids in articles.items()}
        return frozen

    def _voted(self) -> dict[str, tuple[int, ...]]:
        """Ticket number -> the articles recorded as resolving it by someone who may vote (as :meth:`resolvable`
        last read them)."""
        with self._lock:
            return self._articles

    def _visible(self, viewer: Principal, among: frozenset[int]) -> frozenset[int]:
        """Those of the tickets ``among`` that are closed and that ``viewer`` may see."""
        clause = (Ticket.status == "closed") & ticket_clause(viewer)
        with self.database.session() as session:
            if len(among) <= IN_LIMIT:
                clause = clause & Ticket.id.in_(among)
            return frozenset(session.scalars(select(Ticket.id).where(clause))) & among


def _age_days(closed: dt.datetime | None, now: dt.datetime) -> float:
    if closed is None:
        return 0.0
    if closed.tzinfo is None:  # SQLite gives naive datetimes back: they were stored as UTC
        closed = closed.replace(tzinfo=dt.UTC)
    return (now - closed).total_seconds() / 86400


def votes_by(actor: str, roles: list[str] | None, requester: str | None) -> bool:
    """True when a resolution recorded by ``actor`` votes (module docstring): ``roles`` are the actor's ``users``
    row's (None: no such account, e.g. ``svc:...``, ``im:bot``), ``requester`` the ticket's."""
    if actor == requester:
        return False
    if roles is None:
        return actor == HISTORY_ACTOR
    return allowed(roles, Permission.TICKET_WORK)
