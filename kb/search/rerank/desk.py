"""The desk's own evidence for the ranker: "this article resolved a ticket like this query" and helpful votes.

A :class:`DeskVotes` gives, for a query, a vote in [0, 1] per article; :mod:`kb.search.rerank.reranker` adds it
to the learned score. The implementation over the knowledge base's closed tickets lives with the desk
(:class:`kb.desk.resolved_votes.ResolvedTicketVotes`), so search does not depend on the desk; the formula is
here, in one place (:func:`knn_votes`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

#: Recency: a resolution counts half after this many days (exponential decay).
HALF_LIFE_DAYS = 180.0
#: Neighbours below this similarity (mean of embedding and TF-IDF cosine, :mod:`kb.desk.similar`) do not vote.
MIN_SIMILARITY = 0.5
#: Weight of an article's helpful-vote balance beside its ticket votes.
HELPFUL_WEIGHT = 0.2


class DeskVotes(Protocol):
    """Per-article votes of the desk for a query."""

    def votes(self, text: str, vector: npt.NDArray[np.float32] | None, candidates: Sequence[int]) -> dict[int, float]:
        """Article id -> vote in [0, 1] for the query ``text`` (normalised) with embedding ``vector``
        (None when the vector leg did not run), whose reranked articles are ``candidates``."""
        ...


def knn_votes(
    neighbours: Iterable[tuple[float, float, Iterable[int]]],
    helpful: dict[int, tuple[int, int]] | None = None,
) -> dict[int, float]:
    """Votes from the nearest resolved tickets: ``neighbours`` are ``(similarity, age in days, articles that
    resolved the ticket)``; each neighbour at or above :data:`MIN_SIMILARITY` gives each of its articles
    ``similarity * 0.5 ** (age / HALF_LIFE_DAYS)`` (a similarity- and recency-weighted kNN vote, Cover & Hart
    1967). An article's vote is the sum, squashed into [0, 1) by ``1 - exp(-sum)``, plus
    :data:`HELPFUL_WEIGHT` times its helpful balance ``(helpful - not helpful) / (helpful + not helpful + 1)``
    for the articles with ``helpful`` counts ``(helpful, not helpful)``; clamped to [0, 1]."""
    sums: dict[int, float] = {}
    for similarity, age_days, articles in neighbours:
        if similarity < MIN_SIMILARITY:
            continue
        weight = similarity * 0.5 ** (max(0.0, age_days) / HALF_LIFE_DAYS)
        for aid in set(articles):
            sums[aid] = sums.get(aid, 0.0) + weight
    votes = {aid: 1.0 - math.exp(-total) for aid, total in sums.items()}
    for aid, (yes, no) in (helpful or {}).items():
        votes[aid] = votes.get(aid, 0.0) + HELPFUL_WEIGHT * (yes - no) / (yes + no + 1)
    return {aid: min(1.0, max(0.0, v)) for aid, v in votes.items() if min(1.0, max(0.0, v)) > 0}
