"""Query-dependent fusion: how much the hybrid mode trusts the BM25 leg, per query.

``bm25_weight = short`` for a query of at most ``short_terms`` BM25 terms (after the question-framing fillers
are dropped, :meth:`kb.search.text.TextAnalyzer.analyze_query`), else ``long``; raised to at least
``identifier`` when the query holds an identifier (error code, version, path, command option). Short queries are
keywords and phrases typed from an article's own words (``RDS 授权宽限期到了``, ``kubectl drain 卡住``), where an
exact keyword match is the best evidence; long ones are tickets and layman descriptions (``财务部王姐说早上开始连不上
远程桌面…``), where the keywords are diluted by narrative and the vectors carry more of the meaning. The vector leg
gets ``1 - bm25_weight``.

Calibrated with the real engine (``bench/fusion_sweep.py``: every desk-dev query searched at BM25 weights 0.2 to
0.9, ``bench/results/fusion-sweep-desk-dev.md``): by style the best static weight is 0.6 for phrase and keyword
queries (4-6 and 6-9 terms) and 0.4 for ticket and layman ones (10-27 and 6-17 terms); the threshold 8 is the
best on folds 0-2 (the plateau is 6-11). An earlier weighting by the BM25 leg's keyword coverage
(``weak + (strong - weak) * coverage``) measured no better than a static 0.5 with the real engine and was dropped
(bench/results/search-quality-ii.md). The numbers are kept in ``kb/data/fusion.json``; a request's explicit
``bm25_weight`` overrides them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from kb.config import DATA_DIR

WEIGHTS_FILE = DATA_DIR / "fusion.json"


@dataclass(frozen=True)
class FusionWeights:
    """BM25 weights (0 to 1) of a query of at most ``short_terms`` BM25 terms (``short``) and of a longer one
    (``long``), and the least weight of a query holding an identifier (``identifier``; 0: no floor)."""

    short: float
    long: float
    short_terms: int
    identifier: float = 0.0


@lru_cache(maxsize=1)
def calibrated_weights() -> FusionWeights:
    """The weights in ``kb/data/fusion.json``."""
    entry = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    return FusionWeights(
        float(entry["short"]), float(entry["long"]), int(entry["short_terms"]), float(entry["identifier"])
    )


def bm25_weight(has_identifier: bool, query_terms: int, weights: FusionWeights) -> float:
    """The BM25 weight of one query of ``query_terms`` BM25 terms (see module docstring), in [0, 1]."""
    w = weights.short if query_terms <= weights.short_terms else weights.long
    if has_identifier:
        w = max(w, weights.identifier)
    return round(min(1.0, max(0.0, w)), 6)
