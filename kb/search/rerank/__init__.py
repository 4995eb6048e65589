"""The hybrid mode's second stage: a learned ranker over the fused candidates, plus the desk's own evidence.

:class:`SecondStage` is what :class:`kb.search.engine.SearchEngine` calls after fusion: it gathers the
evidence the features need from the BM25 index (:mod:`kb.search.rerank.features`), asks the desk for its votes
(:mod:`kb.search.rerank.desk`) and reorders (:mod:`kb.search.rerank.reranker`). Without the second stage (the
default), the desk's resolved-ticket vote is still added to the fused score by :class:`DeskBoost`
(:mod:`kb.search.rerank.boost`). On with ``KB_RERANK=true``
(:class:`kb.config.Settings`; off by default: on desk-dev and tidb-faq-dev it measured no gain,
``bench/results/ranker-m3e-small.json``), and absent for an embedding model no ranker was trained for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from kb.articles.chunks import ChunkKey
from kb.articles.filters import ArticleSummary
from kb.identity.scopes import Principal
from kb.search.bm25 import BM25Index
from kb.search.rerank.boost import Boosted, DeskBoost
from kb.search.rerank.desk import DeskEvidence, DeskVotes
from kb.search.rerank.features import FIELDS, QueryEvidence
from kb.search.rerank.model import RankerModel, load_ranker
from kb.search.rerank.reranker import Reranked, Reranker
from kb.search.results import LegScore, SearchHit

#: Chunks of each leg the features read (the engine's smallest pool, so features do not depend on the limit).
FEATURE_POOL = 100

__all__ = [
    "FEATURE_POOL",
    "Boosted",
    "DeskBoost",
    "DeskEvidence",
    "DeskVotes",
    "RankerModel",
    "Reranked",
    "Reranker",
    "SecondStage",
    "load_ranker",
]


class SecondStage:
    """Reorders a hybrid search's fused articles (see module docstring). Thread-safe.

    Args:
        model: the ranker (:func:`kb.search.rerank.model.load_ranker`).
        desk_votes: the resolved-ticket and helpful-vote signal; None for none.
    """

    def __init__(self, model: RankerModel, desk_votes: DeskVotes | None = None) -> None:
        self.reranker = Reranker(model)
        self.desk_votes = desk_votes

    def apply(
        self,
        bm25: BM25Index,
        terms: Sequence[str],
        identifiers: Sequence[str],
        legs: Mapping[str, Sequence[tuple[ChunkKey, float]]],
        ranked: Sequence[tuple[ArticleSummary, float]],
        per_leg: Mapping[int, Mapping[str, LegScore]],
        query: tuple[str, npt.NDArray[np.float32] | None, Principal | None],
        explain: bool,
    ) -> Reranked:
        """Rerank ``ranked`` (fused, best first) given the query's BM25 ``terms`` and ``identifiers``, the legs'
        chunk hits ``legs`` (leg name -> ``(chunk key, score)`` best first), each article's places ``per_leg``
        and the query's ``(normalised text, vector, viewer)`` for the desk votes (from the tickets the viewer may
        see; None: every ticket)."""
        words = list(dict.fromkeys([*terms, *identifiers]))
        evidence = QueryEvidence(
            terms=list(terms),
            identifiers=list(identifiers),
            idf=bm25.idf(terms),
            holders=bm25.term_articles(words, FIELDS) if words else {},
            bm25_chunks=list(legs.get("bm25", ()))[:FEATURE_POOL],
            vector_chunks=list(legs.get("vector", ()))[:FEATURE_POOL],
        )
        text, vector, viewer = query
        candidates = [a.id for a, _ in ranked[: self.reranker.depth]]
        votes = self.desk_votes.votes(text, vector, candidates, viewer).votes if self.desk_votes is not None else None
        return self.reranker.rerank(evidence, ranked, per_leg, votes, explain)


def annotate(hits: Sequence[SearchHit], staged: Reranked) -> None:
    """Add each reranked hit's :class:`~kb.search.results.RankerHitExplain` to its ``explain`` (in place)."""
    for hit in hits:
        detail = staged.explain.get(hit.article_id)
        if hit.explain is not None and detail is not None:
            hit.explain["ranker"] = detail
