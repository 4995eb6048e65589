"""Query-dependent fusion: how much the hybrid mode trusts the BM25 leg, per query.

``bm25_weight = weak + (strong - weak) * keyword_coverage``, raised to at least ``identifier`` when the query
holds an identifier (error code, version, path, command option), where ``keyword_coverage`` in [0, 1] is the
IDF-weighted share of the query's keyword terms that the BM25 leg's best article holds in its title, headings
and best chunk (:func:`kb.search.confidence.coverage`). A query whose words an article holds (keywords, error
text pasted from a ticket) trusts BM25; a colloquial description whose words no article holds (weak coverage)
trusts the vectors. The vector leg gets ``1 - bm25_weight``.

The three numbers are calibrated on the desk-dev development set's folds 0-2 and checked on folds 3-4
(``bench/tune_fusion.py``; ``bench/results/fusion-desk-dev.json``) and kept in ``kb/data/fusion.json``. A
request's explicit ``bm25_weight`` overrides them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from kb.config import DATA_DIR

WEIGHTS_FILE = DATA_DIR / "fusion.json"


@dataclass(frozen=True)
class FusionWeights:
    """BM25 weights (0 to 1): at no keyword coverage (``weak``), at full coverage (``strong``), and the least
    weight of a query holding an identifier (``identifier``)."""

    weak: float
    strong: float
    identifier: float


@lru_cache(maxsize=1)
def calibrated_weights() -> FusionWeights:
    """The weights in ``kb/data/fusion.json``."""
    entry = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    return FusionWeights(float(entry["weak"]), float(entry["strong"]), float(entry["identifier"]))


def bm25_weight(has_identifier: bool, keyword_coverage: float, weights: FusionWeights) -> float:
    """The BM25 weight of one query (see module docstring), in [0, 1]."""
    cov = min(1.0, max(0.0, keyword_coverage))
    w = weights.weak + (weights.strong - weights.weak) * cov
    if has_identifier:
        w = max(w, weights.identifier)
    return round(min(1.0, max(0.0, w)), 6)
