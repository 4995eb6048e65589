"""The second-stage ranker's features: what both legs already computed for a query's fused candidates.

One row per candidate article, in the order of :data:`FEATURES` (float64). Query-level columns (``q_*``) are the
same for every candidate of a query; they let a tree model make the weight of the other columns depend on the
query (query-dependent fusion: identifiers and strong keyword coverage -> BM25 columns, weak coverage -> cosine
columns).

- ``fused`` weighted fusion score in [0, 1] (:func:`kb.search.fusion.weighted`); ``fused_rank`` ln(1 + its
  0-based position); ``rrf`` article-level RRF of the two legs' ranks times ``k + 1`` (so in (0, 2]).
- ``bm25`` the article's BM25F score over the query's best BM25F score (0 when BM25 did not find it),
  ``bm25_rank`` ln(rank) (ln(:data:`ABSENT_RANK`) when absent), ``bm25_chunks`` ln(1 + chunks in the BM25 pool).
- ``cos1``, ``cos2``: cosine of the article's best and second-best chunk in the vector pool (absent: the pool's
  last cosine, the most it can be); ``cos_gap`` the query's best cosine minus ``cos1``; ``vec_rank`` ln(rank),
  ``vec_chunks`` ln(1 + chunks in the vector pool).
- ``cov_any``, ``cov_title``, ``cov_head``: IDF-weighted share of the query's terms that the article holds in
  any field of any chunk, in its title, in its headings (:func:`kb.search.confidence.coverage`, IDF from
  :meth:`kb.search.bm25.BM25Index.idf`); ``ident`` share of the query's identifiers it holds (0 without any).
- ``q_terms`` ln(1 + keyword terms), ``q_ident`` 1 when the query holds an identifier, ``q_top_cos`` the query's
  best cosine, ``q_cov`` the best ``cov_any`` among the candidates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kb.articles.chunks import ChunkKey
from kb.search.fusion import RRF_K
from kb.search.results import LegScore

FEATURES: tuple[str, ...] = (
    "fused",
    "fused_rank",
    "rrf",
    "bm25",
    "bm25_rank",
    "bm25_chunks",
    "cos1",
    "cos2",
    "cos_gap",
    "vec_rank",
    "vec_chunks",
    "cov_any",
    "cov_title",
    "cov_head",
    "ident",
    "q_terms",
    "q_ident",
    "q_top_cos",
    "q_cov",
)
#: Fields whose postings say which articles hold a query term (:meth:`kb.search.bm25.BM25Index.term_articles`).
FIELDS: tuple[str, ...] = ("title", "headings", "body", "tags", "codes")
#: Rank given to an article a leg did not find (deeper than any pool of :mod:`kb.search.engine`).
ABSENT_RANK = 1000


@dataclass(frozen=True)
class QueryEvidence:
    """What the legs found for one query, as the features need it.

    Args:
        terms: the BM25 leg's terms (the user's own, not synonym expansions).
        identifiers: the query's identifiers (error codes, versions, paths).
        idf: BM25 idf per term (:meth:`kb.search.bm25.BM25Index.idf`).
        holders: ``(term, field) -> article ids`` holding it (:meth:`kb.search.bm25.BM25Index.term_articles`),
            for ``terms`` and ``identifiers`` over :data:`FIELDS`.
        bm25_chunks: the BM25 leg's chunk hits, best first (``(article_id, ord)``, BM25F score).
        vector_chunks: the vector leg's chunk hits, best first (cosine).
    """

    terms: Sequence[str]
    identifiers: Sequence[str]
    idf: Mapping[str, float]
    holders: Mapping[tuple[str, str], set[int]]
    bm25_chunks: Sequence[tuple[ChunkKey, float]]
    vector_chunks: Sequence[tuple[ChunkKey, float]]


def feature_matrix(
    evidence: QueryEvidence,
    candidates: Sequence[tuple[int, float]],
    per_leg: Mapping[int, Mapping[str, LegScore]],
) -> npt.NDArray[np.float64]:
    """The ``(len(candidates), len(FEATURES))`` features of ``candidates`` (``(article_id, fused score)`` in
    fused order) with their places in each leg ``per_leg`` (see module docstring)."""
    n = len(candidates)
    out = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if not n:
        return out
    bm25_count: dict[int, int] = {}
    for (aid, _), _score in evidence.bm25_chunks:
        bm25_count[aid] = bm25_count.get(aid, 0) + 1
    cosines: dict[int, list[float]] = {}
    for (aid, _), cosine in evidence.vector_chunks:
        cosines.setdefault(aid, []).append(cosine)
    last_cos = evidence.vector_chunks[-1][1] if evidence.vector_chunks else 0.0
    top_cos = evidence.vector_chunks[0][1] if evidence.vector_chunks else 0.0
    top_bm25 = evidence.bm25_chunks[0][1] if evidence.bm25_chunks else 0.0
    total_idf = sum(evidence.idf.get(t, 0.0) for t in evidence.terms)

    def share(aid: int, fields: Sequence[str]) -> float:
        if total_idf <= 0:
            return 0.0
        held = sum(
            evidence.idf.get(t, 0.0)
            for t in evidence.terms
            if any(aid in evidence.holders.get((t, f), ()) for f in fields)
        )
        return held / total_idf

    col = {name: i for i, name in enumerate(FEATURES)}
    for row, (aid, fused) in enumerate(candidates):
        legs = per_leg.get(aid, {})
        bm25, vector = legs.get("bm25"), legs.get("vector")
        cos = cosines.get(aid, [])
        values = {
            "fused": fused,
            "fused_rank": math.log1p(row),
            "rrf": sum((RRF_K + 1) / (RRF_K + s.rank) for s in (bm25, vector) if s is not None),
            "bm25": bm25.score / top_bm25 if bm25 is not None and top_bm25 > 0 else 0.0,
            "bm25_rank": math.log(bm25.rank if bm25 is not None else ABSENT_RANK),
            "bm25_chunks": math.log1p(bm25_count.get(aid, 0)),
            "cos1": cos[0] if cos else last_cos,
            "cos2": cos[1] if len(cos) > 1 else last_cos,
            "cos_gap": top_cos - (cos[0] if cos else last_cos),
            "vec_rank": math.log(vector.rank if vector is not None else ABSENT_RANK),
            "vec_chunks": math.log1p(len(cos)),
            "cov_any": share(aid, FIELDS),
            "cov_title": share(aid, ("title",)),
            "cov_head": share(aid, ("headings",)),
            "ident": (
                sum(any(aid in evidence.holders.get((i, f), ()) for f in FIELDS) for i in evidence.identifiers)
                / len(evidence.identifiers)
                if evidence.identifiers
                else 0.0
            ),
        }
        for name, value in values.items():
            out[row, col[name]] = value
    out[:, col["q_terms"]] = math.log1p(len(evidence.terms))
    out[:, col["q_ident"]] = float(bool(evidence.identifiers))
    out[:, col["q_top_cos"]] = top_cos
    out[:, col["q_cov"]] = out[:, col["cov_any"]].max()
    return out
