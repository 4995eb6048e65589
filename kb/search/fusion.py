"""Rank fusion of the BM25 and vector legs.

Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009, "Reciprocal Rank Fusion outperforms
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


def order(scores: Mapping[K, float], tie_key: Mapping[K, object] | None = None) -> list[K]:
    """Keys by score descending; ties by ``tie_key[key]`` (or the key itself) ascending."""
    return sorted(scores, key=lambda key: (-scores[key], tie_key[key] if tie_key else key))
