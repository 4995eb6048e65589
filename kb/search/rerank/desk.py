"""The desk's own evidence for the ranker: "this article resolved a ticket like this query" and helpful votes.

A :class:`DeskVotes` gives, for a query, a vote in [0, 1] per article (:class:`DeskEvidence`): the default
hybrid search adds it to the fused score (:mod:`kb.search.rerank.boost`), the second stage, when on, to the
learned score (:mod:`kb.search.rerank.reranker`). The implementation over the knowledge base's closed tickets
lives with the desk (:class:`kb.desk.resolved_votes.ResolvedTicketVotes`), so search does not depend on the desk;
the formula is here, in one place (:func:`knn_evidence`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from kb.config import TICKET_VOTE_MIN_SIMILARITY
from kb.identity.scopes import Principal

#: Recency: a resolution counts half after this many days (exponential decay).
HALF_LIFE_DAYS = 180.0
#: Neighbours below this similarity (mean of embedding and TF-IDF cosine, :mod:`kb.desk.similar`) do not vote: the
#: default of the setting ``KB_TICKET_VOTE_MIN_SIMILARITY``, defined (with its calibration) in :mod:`kb.config`.
MIN_SIMILARITY = TICKET_VOTE_MIN_SIMILARITY
#: Weight of an article's helpful-vote balance beside its ticket votes.
HELPFUL_WEIGHT = 0.2


@dataclass(frozen=True)
class DeskEvidence:
    """The desk's votes for a query: ``votes`` article id -> vote in [0, 1]; ``tickets`` article id -> the
    resolved tickets that voted for it, ``(ticket number, weight)`` heaviest first (weight = similarity x recency
    decay, before the squash), for ``explain``; ``model``: the embedding model that encoded the query and the
    tickets for the kNN (the ticket model, ``KB_TICKET_EMBEDDING_MODEL``; '' when no kNN ran)."""

    votes: dict[int, float] = field(default_factory=dict)
    tickets: dict[int, list[tuple[str, float]]] = field(default_factory=dict)
    model: str = ""


class DeskVotes(Protocol):
    """Per-article votes of the desk for a query."""

    def votes(
        self,
        text: str,
        vector: npt.NDArray[np.float32] | None,
        candidates: Sequence[int],
        viewer: Principal | None = None,
        helpful: bool = True,
    ) -> DeskEvidence:
        """The votes for the query ``text`` (normalised) with embedding ``vector`` (None when the vector leg did
        not run) among the articles ``candidates`` (no other article gets a vote), from the tickets ``viewer``
        may see (None: the system, every ticket); ``helpful``: add the articles' helpful-vote balance."""
        ...


def knn_votes(
    neighbours: Iterable[tuple[float, float, Iterable[int]]],
    helpful: dict[int, tuple[int, int]] | None = None,
) -> dict[int, float]:
    """:func:`knn_evidence` of unnamed neighbours ``(similarity, age in days, articles)``: its votes only."""
    return knn_evidence([("", s, age, arts) for s, age, arts in neighbours], helpful).votes


def knn_evidence(
    neighbours: Iterable[tuple[str, float, float, Iterable[int]]],
    helpful: dict[int, tuple[int, int]] | None = None,
    min_similarity: float = MIN_SIMILARITY,
) -> DeskEvidence:
    """Votes from the nearest resolved tickets: ``neighbours`` are ``(ticket number, similarity, age in days,
    articles that resolved the ticket)``; each neighbour at or above ``min_similarity`` gives each of its
    articles ``similarity * 0.5 ** (age / HALF_LIFE_DAYS)`` (a similarity- and recency-weighted kNN vote, Cover &
    Hart 1967). An article's vote is the sum, squashed into [0, 1) by ``1 - exp(-sum)``, plus
    :data:`HELPFUL_WEIGHT` times its helpful balance ``(helpful - not helpful) / (helpful + not helpful + 1)``
    for the articles with ``helpful`` counts ``(helpful, not helpful)``; clamped to [0, 1]; articles whose vote
    is 0 are left out."""
    sums: dict[int, float] = {}
    tickets: dict[int, list[tuple[str, float]]] = {}
    for number, similarity, age_days, articles in neighbours:
        if similarity < min_similarity:
            continue
        weight = similarity * 0.5 ** (max(0.0, age_days) / HALF_LIFE_DAYS)
        for aid in set(articles):
            sums[aid] = sums.get(aid, 0.0) + weight
            tickets.setdefault(aid, []).append((number, round(weight, 4)))
    votes = {aid: 1.0 - math.exp(-total) for aid, total in sums.items()}
    for aid, (yes, no) in (helpful or {}).items():
        votes[aid] = votes.get(aid, 0.0) + HELPFUL_WEIGHT * (yes - no) / (yes + no + 1)
    kept = {aid: min(1.0, max(0.0, v)) for aid, v in votes.items() if min(1.0, max(0.0, v)) > 0}
    voters = {aid: sorted(tickets.get(aid, []), key=lambda t: -t[1]) for aid in kept}
    return DeskEvidence(kept, voters)
