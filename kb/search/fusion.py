"""Fusion of the BM25 and vector legs.

Two methods:

**Weighted score fusion** (default): ``fused(d) = w_bm25 * n_bm25(d) + w_vector * n_vector(d)``, weights
normalised to sum 1, each leg's score min-max normalised over that leg's candidates into [0, 1]::

    n_leg(d) = clamp((s(d) - floor_leg) / (top_leg - floor_leg), 0, 1)

with ``top_leg`` the leg's best score and ``floor_leg`` its floor: 0 for BM25 (so ``n_bm25 = bm25 / max``, and
the weakest keyword match keeps a part), and for the vector leg the cosine of its 100th best chunk (the
candidate depth of a 10-result page, so a page's order does not depend on how deep the caller asked), cosines
being clamped at 0 first. A document missing from a leg gets exactly 0 from it, never a negative part (BL-17);
keyword-only documents go through the same weighting as the rest (BL-18); the raw cosine is reported beside its
normalised part (BL-16). Raw cosines of m3e-small crowd into 0.6-0.9, so without the floor the vector leg barely
reorders anything: on tidb-faq-dev nDCG@10 0.820 -> 0.824 with it (see bench/results/search-quality-steps.md);
weighted fusion beats RRF k=60 (0.798) because RRF discards how much better the best BM25 match is than the next.

**Reciprocal rank fusion** (Cormack, Clarke & Büttcher, SIGIR 2009, "Reciprocal Rank Fusion outperforms
Condorcet and individual Rank Learning Methods"): ``score(d) = sum over legs of 1 / (k + rank_leg(d))`` with
ranks from 1 and ``k = 60``. A document missing from a leg gets nothing from it. Documents with equal scores
in a leg share that leg's rank (competition ranking, "1224": the best rank of the tied group, see
:func:`tied_ranks`), so a fused order never depends on the order a leg happened to list tied documents in.
Ties in the fused score are broken by the stable key (smaller first).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

RRF_K = 60


def tied_ranks(scores: Mapping[K, float]) -> dict[K, int]:
    """Rank from 1 by score, descending; equal scores share the best rank of their group ("1224")."""
    ranks: dict[K, int] = {}
    previous: float | None = None
    rank = 0
    for position, key in enumerate(sorted(scores, key=lambda key: -scores[key]), start=1):
        if scores[key] != previous:
            rank, previous = position, scores[key]
        ranks[key] = rank
    return ranks


def rrf(legs: Mapping[str, Mapping[K, float]], k: int = RRF_K) -> dict[K, float]:
    """Fuse the legs' scores (leg -> key -> score, higher is better) by the RRF of their :func:`tied_ranks`,
    into scores in ``(0, len(legs) / (k + 1)]``, higher is better."""
    scores: dict[K, float] = {}
    for leg_scores in legs.values():
        for key, rank in tied_ranks(leg_scores).items():
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return scores


def weighted(
    scores: Mapping[str, Mapping[K, float]],
    weights: Mapping[str, float],
    floors: Mapping[str, float] | None = None,
) -> tuple[dict[K, float], dict[K, dict[str, float]]]:
    """Weighted score fusion (see module docstring).

    Args:
        scores: raw scores per leg: ``"bm25"`` (BM25F, > 0) and/or ``"vector"`` (cosine in [-1, 1]).
        weights: weight per leg; normalised to sum 1 over the legs present.
        floors: per leg, the raw score normalised to 0 (default 0: the part is ``score / best``).

    Returns:
        ``(fused, parts)``: fused score in [0, 1] per key, and each leg's normalised part per key.
    """
    present = [leg for leg in scores if weights.get(leg, 0) > 0]
    total = sum(weights[leg] for leg in present) or 1.0
    fused: dict[K, float] = {}
    parts: dict[K, dict[str, float]] = {}
    for leg in present:
        leg_scores = {key: max(0.0, raw) for key, raw in scores[leg].items()}
        if not leg_scores:
            continue
        top = max(leg_scores.values())
        floor = min(max(0.0, (floors or {}).get(leg, 0.0)), top)
        span = top - floor  # 0 when the leg has one distinct score: its best candidates get 1 (0 if that is 0)
        for key, raw in leg_scores.items():
            norm = min(1.0, max(0.0, (raw - floor) / span)) if span > 0 else float(raw > 0)
            parts.setdefault(key, {})[leg] = norm
            fused[key] = fused.get(key, 0.0) + weights[leg] / total * norm
    return fused, parts


def order(scores: Mapping[K, float], tie_key: Mapping[K, object] | None = None) -> list[K]:
    """Keys by score descending; ties by ``tie_key[key]`` (or the key itself) ascending."""
    return sorted(scores, key=lambda key: (-scores[key], tie_key[key] if tie_key else key))
