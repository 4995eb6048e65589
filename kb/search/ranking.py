"""Chunk candidates of both legs -> ranked articles: successors, filters, per-article leg scores, fusion.

Steps 3-5 of :mod:`kb.search.engine` (grouping, filters, fusion), moved here from the engine (which must stay under
400 lines). Each leg's candidates are ``((article_id, ord), score)`` pairs, best first, as
:meth:`kb.search.bm25.BM25Index.search_keys` and :meth:`kb.search.vectors.VectorIndex.search_keys` give them: no
hit object per candidate. Each article's :class:`~kb.search.results.LegScore` is built once, with its
normalised part of weighted fusion (the engine built it twice: once for the rank, then again with the part).
"""

from __future__ import annotations

from dataclasses import dataclass

from kb.articles.chunks import ChunkKey
from kb.articles.filters import ArticleFilter, ArticleSummary
from kb.search.article_cache import ArticleCache
from kb.search.confidence import Thresholds
from kb.search.fusion import RRF_K, order, rrf, tied_ranks, weighted
from kb.search.grouping import article_bm25
from kb.search.results import LegScore, SearchRequest

#: Longest ``superseded_by`` chain followed from a retired article to the article that replaces it.
MAX_SUCCESSOR_HOPS = 5

#: One leg's chunk candidates: ``((article_id, ord), score)``, best first.
Candidates = list[tuple[ChunkKey, float]]


@dataclass(frozen=True)
class Ranking:
    """What ranking gives the engine: ``ranked`` ``(article, fused or leg score)`` best first, each article's
    :class:`LegScore` per leg in ``per_leg`` (``{article id: {leg: LegScore}}``) and its best chunk (by
    chunk-level RRF of the legs) in ``best_chunk``; ``candidates``, per leg, the chunk candidates of articles the
    request may see (its filters and visibility: a count over the whole index would tell a caller whether a word
    occurs in text hidden from them)."""

    ranked: list[tuple[ArticleSummary, float]]
    per_leg: dict[int, dict[str, LegScore]]
    best_chunk: dict[int, ChunkKey]
    candidates: dict[str, int]


def rank(
    legs: dict[str, Candidates],
    request: SearchRequest,
    required: set[int] | None,
    w: float,
    version: int,
    *,
    cache: ArticleCache,
    fusion: str,
    chunk_decay: float,
    thresholds: Thresholds,
) -> Ranking:
    """Rank the articles of the legs' candidates for ``request`` (module docstring of :mod:`kb.search.engine`).

    Args:
        legs: ``"bm25"`` and/or ``"vector"`` candidates (see :data:`Candidates`).
        request: mode, filters and fusion of the search.
        required: the articles holding every quoted phrase; None: no phrase asked.
        w: BM25 weight of weighted fusion, 0 to 1 (only read in the hybrid mode with weighted fusion).
        version: the BM25 index version searched (for the summaries of :class:`ArticleCache`).
        cache: article summaries per index version.
        fusion: the engine's default fusion (``weighted`` or ``rrf``), when the request names none.
        chunk_decay: BM25 leg, weight of an article's further chunks (:func:`kb.search.grouping.article_bm25`).
        thresholds: the model's calibration (vector padding bar and fusion floor).
    """
    candidate_ids = {key[0] for hits in legs.values() for key, _ in hits}
    articles = cache.summaries(candidate_ids, version)
    flt = request.filters
    passing = {aid for aid, a in articles.items() if flt.matches(a)}  # each candidate checked once
    successors = _successors(articles, passing, flt, version, cache)
    if successors:  # a retired article's matches count for the article that supersedes it
        legs = {
            leg: [((successors[k[0]].id, 0) if k[0] in successors else k, score) for k, score in hits]
            for leg, hits in legs.items()
        }
        articles.update({s.id: s for s in successors.values()})
        passing.update(s.id for s in successors.values())  # a successor passes the filter (_successors)
    allowed = passing if required is None else passing & required
    leg_scores: dict[str, dict[int, float]] = {}
    for leg, hits in legs.items():
        if leg != "bm25" or chunk_decay == 0:
            leg_scores[leg] = _best_scores(hits, allowed)
            continue
        per_article: dict[int, list[tuple[int, float]]] = {}
        for (article_id, ord_), score in hits:  # hits come best first: an article's list is too
            if article_id in allowed:
                per_article.setdefault(article_id, []).append((ord_, score))
        leg_scores[leg] = {aid: article_bm25(chunk_scores, chunk_decay) for aid, chunk_scores in per_article.items()}
    if "vector" in leg_scores:  # padding: vector-only matches no closer than unrelated text gets
        bar = thresholds.unrelated_cosine
        keyword = leg_scores.get("bm25", {})
        leg_scores["vector"] = {a: c for a, c in leg_scores["vector"].items() if c >= bar or a in keyword}
    method = request.fusion or fusion
    fused: dict[int, float] = {}
    parts: dict[int, dict[str, float]] = {}
    if request.mode == "hybrid" and method != "rrf":
        fused, parts = weighted(leg_scores, {"bm25": w, "vector": 1.0 - w}, {"vector": thresholds.vector_floor})
    per_leg: dict[int, dict[str, LegScore]] = {}
    ranks: dict[str, dict[int, int]] = {}
    for leg, by_article in leg_scores.items():
        ranks[leg] = tied_ranks(by_article)
        for aid, place in ranks[leg].items():
            per_leg.setdefault(aid, {})[leg] = LegScore(place, by_article[aid], parts.get(aid, {}).get(leg))
    best_chunk = _best_chunks({leg: {k: score for k, score in hits if k[0] in per_leg} for leg, hits in legs.items()})
    scores: dict[int, float] = {}
    if request.mode == "hybrid" and method == "rrf":
        for leg_ranks in ranks.values():  # fusion.rrf(leg_scores), without ranking each leg a second time
            for aid, place in leg_ranks.items():
                scores[aid] = scores.get(aid, 0.0) + 1.0 / (RRF_K + place)
    elif request.mode == "hybrid":
        scores = fused
    else:
        scores = leg_scores.get(request.mode, {})
    seen = {leg: sum(1 for key, _ in hits if key[0] in allowed) for leg, hits in legs.items()}
    return Ranking([(articles[aid], scores[aid]) for aid in order(scores)], per_leg, best_chunk, seen)


def _best_scores(hits: Candidates, allowed: set[int]) -> dict[int, float]:
    """Each allowed article's best chunk score among ``hits`` (best first: its first one), articles in the order
    of their first hit: the vector leg's article score, and the BM25 leg's without decay (:func:`article_bm25`
    with ``decay`` 0 is its best chunk's score, ``s + 0.0 * s2 ...``, the same float for finite scores)."""
    scores: dict[int, float] = {}
    for (article_id, _), score in hits:
        if article_id in allowed and article_id not in scores:
            scores[article_id] = score
    return scores


def _best_chunks(chunk_legs: dict[str, dict[ChunkKey, float]]) -> dict[int, ChunkKey]:
    """Each article's best chunk: first in the chunk-level RRF of the legs (ties by key). With one leg, RRF orders
    chunks as their scores do (equal scores share a rank), so the best chunk is the article's chunk with the
    highest score, ties by key: found in one pass, without ranking and sorting every chunk twice."""
    if len(chunk_legs) == 1:
        best: dict[int, tuple[float, ChunkKey]] = {}
        for key, score in next(iter(chunk_legs.values())).items():
            seen = best.get(key[0])
            if seen is None or (-score, key) < seen:
                best[key[0]] = (-score, key)
        return {aid: key for aid, (_, key) in best.items()}
    best_chunk: dict[int, ChunkKey] = {}
    for key in order(rrf(chunk_legs)):
        best_chunk.setdefault(key[0], key)
    return best_chunk


def _successors(
    articles: dict[int, ArticleSummary], passing: set[int], flt: ArticleFilter, version: int, cache: ArticleCache
) -> dict[int, ArticleSummary]:
    """For each retired candidate the filter excludes (not in ``passing``, the ids of ``articles`` that pass
    ``flt``) and that names a successor: the end of its ``superseded_by`` chain (at most
    :data:`MAX_SUCCESSOR_HOPS` hops), when that article passes the filter. Only through articles the viewer may
    see (:meth:`ArticleFilter.visible`): the words of a retired restricted or internal article never find its
    successor for someone who may not read it (found by session 9's outside tester: a requester could probe a
    retired restricted article's text, with a graded score, through its public successor)."""
    found: dict[int, ArticleSummary] = {}
    for aid, article in articles.items():
        if aid in passing or article.status != "retired" or article.superseded_by is None:
            continue  # the chain below would stop at its first step
        if not flt.visible(article):
            continue
        current = article
        for _ in range(MAX_SUCCESSOR_HOPS):
            if flt.matches(current) or current.status != "retired" or current.superseded_by is None:
                break
            nxt = articles.get(current.superseded_by) or cache.summaries([current.superseded_by], version).get(
                current.superseded_by
            )
            if nxt is None or not flt.visible(nxt):
                break
            current = nxt
        if current.id != aid and flt.matches(current) and not flt.matches(article):
            found[aid] = current
    return found
