"""Carry a base model's calibrated cosine bars over to a model adapted from it, without relevance labels.

Fine-tuning with in-batch negatives spreads the cosine scale (unrelated pairs fall lower, the training pairs
rise), so the base model's bars (:mod:`kb.search.confidence`: ``vector_floor``, ``unrelated_cosine``,
``cosine_min``) mean something else for the adapted model, and a model the calibration file does not name gets
no bars at all. This maps each bar by **quantile matching**: with ``C_base`` and ``C_new`` the cosines of the
same (pseudo-query, passage) pairs under each model, a bar ``t`` becomes the ``F_base(t)`` quantile of ``C_new``,
where ``F_base`` is the empirical distribution of ``C_base`` (interpolated linearly between sorted samples; a bar
beyond the sample's range maps to its end): a bar that ``x`` % of pairs fell below under the
base model is put where ``x`` % of the pairs fall under the adapted one (histogram matching; e.g. Gonzalez &
Woods, *Digital Image Processing*, 3rd ed., sect. 3.3.2). The pseudo-queries are the KB's own pair anchors
(titles and headings), the passages its own chunk texts: nothing of an evaluation set is read. The bars on
other scales (coverage, fused and ranker scores) are copied unchanged.

The result is written into the adapted folder's ``kb-adapt.json`` (``thresholds``), which
:func:`kb.search.confidence.thresholds_for` reads for a model named by that folder.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np

from kb.search.confidence import Thresholds
from kb.search.embedders.base import Embedder

#: Pseudo-queries and passages sampled (seeded) for the cosine distributions: 200 x 1000 = 200k pairs.
QUERY_SAMPLE = 200
PASSAGE_SAMPLE = 1000
#: The cosine bars mapped; the others are copied.
COSINE_BARS = ("cosine_min", "vector_floor", "unrelated_cosine")


def matched_thresholds(
    base: Embedder,
    adapted: Embedder,
    queries: Sequence[str],
    passages: Sequence[str],
    thresholds: Thresholds,
    seed: int = 13,
) -> dict[str, float]:
    """The adapted model's bars, as ``{field of Thresholds: value}`` (module docstring).

    Args:
        base / adapted: the two models (query side for ``queries``, passage side for ``passages``).
        queries / passages: texts to sample from (at most :data:`QUERY_SAMPLE` / :data:`PASSAGE_SAMPLE`).
        thresholds: the base model's calibrated bars; an infinite bar stays infinite.

    Raises:
        ValueError: no query or no passage.
    """
    if not queries or not passages:
        raise ValueError("matching thresholds needs at least one query and one passage")
    rng = random.Random(seed)
    qs = rng.sample(list(queries), min(QUERY_SAMPLE, len(queries)))
    ps = rng.sample(list(passages), min(PASSAGE_SAMPLE, len(passages)))
    old = np.sort((base.encode_queries(qs) @ base.encode_passages(ps).T).ravel())
    new = np.sort((adapted.encode_queries(qs) @ adapted.encode_passages(ps).T).ravel())
    out: dict[str, float] = {}
    for name in ("coverage_min", *COSINE_BARS, "fused_min", "ranker_min"):
        value = float(getattr(thresholds, name))
        if name in COSINE_BARS and math.isfinite(value):
            ranks = np.arange(old.size, dtype=np.float64)
            value = float(np.interp(np.interp(value, old, ranks), ranks, new))  # F_new^-1(F_base(value))
        out[name] = round(value, 4) if math.isfinite(value) else value
    return out
