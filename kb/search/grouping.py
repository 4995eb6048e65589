"""An article's score in a leg, from the scores of its chunks.

Articles are split into overlapping chunks (:mod:`kb.articles.chunking`); each leg scores chunks. The vector leg
gives an article its best chunk's cosine. The BM25 leg can add further chunks (terms of the query spread over
an article's sections): :func:`article_bm25`.
"""

from __future__ import annotations

#: BM25 leg: an article's score can be the decayed sum of its best CHUNK_TERMS chunk scores (see module docstring).
CHUNK_TERMS = 3
#: Default decay: 0, the best chunk only. Measured: 0.5 costs desk-dev hybrid nDCG@10 0.786 -> 0.777 and
#: tidb-faq-dev BM25 0.814 -> 0.780 (0.1: 0.809), so the sum is off by default (bench/results/search-quality-ii.md).
CHUNK_DECAY = 0.0


def article_bm25(chunk_scores: list[tuple[int, float]], decay: float) -> float:
    """An article's BM25 leg score from its chunks' ``(ord, score)``, best first: the ``decay``-ed sum of its best
    :data:`CHUNK_TERMS` chunks that are not neighbours of a chunk already counted (neighbours share the
    overlap of the chunker, whose terms would count twice)."""
    counted: list[int] = []
    total = 0.0
    for ord_, score in chunk_scores:
        if len(counted) == CHUNK_TERMS:
            break
        if any(abs(ord_ - other) <= 1 for other in counted):
            continue
        total += score * decay ** len(counted)
        counted.append(ord_)
    return total
