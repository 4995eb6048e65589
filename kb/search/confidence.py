"""Is the best result a confident match? Two signals, each calibrated per embedding model.

- **coverage**: the share of the query's IDF mass that the top result holds (its title, headings and best
  chunk), ``sum(idf(t) for matched t) / sum(idf(t) for all query terms)``, in [0, 1]. IDF is whoosh's BM25
  idf of the term in the chunk bodies. Independent of other results, unlike a max-normalised BM25 score.
- **cosine**: the top result's vector similarity to the query. Raw cosines of Chinese models sit high even
  for unrelated text (FlagOpen/FlagEmbedding#1: ~0.8), so the bar is calibrated, never a fixed 0.5.

The answer is confident when ``coverage >= coverage_min`` or ``cosine >= cosine_min``, and, in the hybrid mode,
the top hit's score reaches its bar: ``fused_min`` for the weighted fusion score (in [0, 1]: near 1 only when
both legs rank the article at or near their top, so the legs agree), ``ranker_min`` for the second-stage
ranker's score (:mod:`kb.search.rerank`). Measured on desk-dev (``bench/calibrate_desk.py``): without the
agreement bar no coverage/cosine pair flags 90 % of the unanswerable queries while keeping confident-but-wrong
answers under 5 %; with it both hold on the held-out folds. Thresholds per model
are in ``kb/data/confidence.json`` with what they were calibrated on (``bench/calibrate_confidence.py``); an
unknown model gets no cosine bar (only coverage counts) until it is calibrated. A model folder made by
``kb model adapt`` carries its own bars in its ``kb-adapt.json`` (``thresholds``, carried over from its base
model by :mod:`kb.model.calibrate`), read when the calibration file does not name it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kb.articles.chunks import ChunkKey, ChunkPassage
from kb.config import DATA_DIR
from kb.search.results import ConfidenceSignals, LegScore, SearchHit
from kb.search.term_tokens import StoredBlocks, held_terms
from kb.search.text import TextAnalyzer

CALIBRATION_FILE = DATA_DIR / "confidence.json"
DEFAULT_COVERAGE_MIN = 0.35


@dataclass(frozen=True)
class Thresholds:
    """Per-model calibration: minimum coverage (fraction, 0-1) and cosine (-1 to 1) for a confident top result,
    ``vector_floor``, the cosine unrelated text reaches anyway (the vector leg's fusion floor, see
    :mod:`kb.search.fusion`; 0 for a model never calibrated), and ``unrelated_cosine``, the best cosine a
    question the KB cannot answer typically reaches: a vector-only match below it is padding, not a result
    (default ``vector_floor``); ``fused_min`` and ``ranker_min``, the least hybrid weighted-fusion score and
    second-stage score of a confident top result (default: no bar)."""

    coverage_min: float
    cosine_min: float
    vector_floor: float = 0.0
    unrelated_cosine: float = 0.0
    fused_min: float = -math.inf
    ranker_min: float = -math.inf


@lru_cache(maxsize=16)
def thresholds_for(model: str) -> Thresholds:
    """Calibrated thresholds of ``model``, or coverage-only defaults for a model never calibrated."""
    table = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    entry = table.get(model) or _adapted_entry(model)
    if entry is None:
        return Thresholds(DEFAULT_COVERAGE_MIN, math.inf)
    floor = float(entry.get("vector_floor", 0.0))
    return Thresholds(
        float(entry["coverage_min"]),
        float(entry["cosine_min"]),
        floor,
        float(entry.get("unrelated_cosine", floor)),
        float(entry.get("fused_min", -math.inf)),
        float(entry.get("ranker_min", -math.inf)),
    )


def _adapted_entry(model: str) -> dict[str, float] | None:
    """The ``thresholds`` of an adapted model folder's manifest (``kb-adapt.json``), or None."""
    manifest = Path(model) / "kb-adapt.json"
    try:
        entry = json.loads(manifest.read_text(encoding="utf-8")).get("thresholds") if manifest.is_file() else None
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and "coverage_min" in entry and "cosine_min" in entry else None


def coverage(query_terms: list[str], matched: set[str], idf: dict[str, float]) -> float:
    """IDF-weighted share of ``query_terms`` found in ``matched``, in [0, 1]; 0 for no terms."""
    total = sum(idf.get(t, 0.0) for t in query_terms)
    if total <= 0:
        return 0.0
    return sum(idf.get(t, 0.0) for t in query_terms if t in matched) / total


def is_confident(
    cov: float, cosine: float | None, thresholds: Thresholds, score: float | None = None, bar: float = -math.inf
) -> bool:
    """The rule in the module docstring; a missing cosine counts as no vector evidence, a missing ``score`` (the
    top hit's hybrid score, whose bar is ``bar``) as no bar."""
    signal = cov >= thresholds.coverage_min or (cosine is not None and cosine >= thresholds.cosine_min)
    return signal and (score is None or score >= bar)


def top_confidence(
    analyzer: TextAnalyzer,
    terms: Sequence[str],
    hits: Sequence[SearchHit],
    chunks: Mapping[ChunkKey, ChunkPassage],
    per_leg: Mapping[int, Mapping[str, LegScore]],
    idf: Mapping[str, float],
    limits: Thresholds,
    scored_by: str | None,
    stored: StoredBlocks | None = None,
) -> ConfidenceSignals:
    """The :class:`~kb.search.results.ConfidenceSignals` of a search's top hit: its coverage of ``terms`` (its
    title, headings and best chunk, from ``chunks``), its cosine (its vector place in ``per_leg``) and its score
    when ``scored_by`` is ``"fused"`` (hybrid weighted fusion) or ``"ranker"`` (the second stage); None: the
    score has no bar (a single leg, RRF). ``idf`` weighs the terms (:func:`kb.search.visible_terms.visible_idf`:
    the caller's view, so that terms held only in text hidden from them count as unknown). ``stored``: the blocks'
    tokens stored at index time (:mod:`kb.search.block_store`; None: tokenise them)."""
    bar = {"fused": limits.fused_min, "ranker": limits.ranker_min}.get(scored_by or "")
    score_min = bar if bar is not None and math.isfinite(bar) else None
    if not hits:
        return ConfidenceSignals(limits.coverage_min, limits.cosine_min, False, 0.0, None, score_min, None)
    top = hits[0]
    chunk = next((c for c in chunks.values() if c.article_id == top.article_id), None)
    text = " ".join([top.title, *top.heading_path, chunk.text if chunk is not None else ""])
    cov = coverage(list(terms), held_terms(text, set(terms), analyzer, stored), dict(idf)) if terms else 0.0
    vector = per_leg.get(top.article_id, {}).get("vector")
    cosine = vector.score if vector is not None else None
    score = top.score if bar is not None else None
    confident = is_confident(cov, cosine, limits, score, bar if bar is not None else -math.inf)
    return ConfidenceSignals(limits.coverage_min, limits.cosine_min, confident, round(cov, 4), cosine, score_min, score)


def scored_by(mode: str, fusion: str, bm25_weight: float | None, reranked: bool) -> str | None:
    """Which score of a search in ``mode`` with ``fusion`` the top hit's bar reads (:func:`top_confidence`):
    ``"ranker"`` when the second stage ``reranked``, ``"fused"`` for hybrid weighted fusion with the calibrated
    weights (a request's own ``bm25_weight`` changes the score's meaning: no bar), else None."""
    if reranked:
        return "ranker"
    return "fused" if mode == "hybrid" and fusion == "weighted" and bm25_weight is None else None
