"""Pseudo-relevance feedback for the BM25 leg (RM3-style).

A colloquial query ("电脑一开机就自己重启") shares a word or two with the articles that answer it; the chunks the
first BM25 pass ranks highest often hold the article's own vocabulary for the symptom. RM3 (Abdul-Jaleel et
al., "UMass at TREC 2004", the relevance model of Lavrenko & Croft 2001 interpolated with the query) adds the
terms most probable under those top chunks:

    P(t | R) = sum over the top ``docs`` chunks d of  w(d) * tf(t, d) / |d|,   w(d) = score(d) / sum of scores

Terms the query has, terms shorter than two characters (unless alphanumeric identifiers), and terms whose body
idf is below ``min_idf`` (too common to say anything) are left out; the best ``terms`` are added with weight
``weight * P(t | R) / max P(t | R)`` (so the best feedback term gets ``weight``, far below the user's own 1.0).
Only when the first pass is unsure: a query whose best chunk holds at least ``max_coverage`` of its idf-weighted
terms (:func:`kb.search.confidence.coverage`) is left alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kb.search.text import TextAnalyzer

#: (title, heading path, text) of a chunk, by its key.
ChunkTexts = Callable[[Sequence[tuple[int, int]]], Mapping[tuple[int, int], str]]


@dataclass(frozen=True)
class FeedbackSettings:
    """RM3 settings (see module docstring). ``docs`` and ``terms`` are counts; ``weight`` and ``max_coverage``
    are in [0, 1]; ``min_idf`` is a BM25 idf."""

    docs: int = 5
    terms: int = 8
    weight: float = 0.2
    min_idf: float = 1.5
    max_coverage: float = 1.01


def feedback_terms(
    top: Sequence[tuple[tuple[int, int], float]],
    texts: Mapping[tuple[int, int], str],
    own: Mapping[str, float],
    analyzer: TextAnalyzer,
    idf: Callable[[list[str]], Mapping[str, float]],
    settings: FeedbackSettings,
) -> dict[str, float]:
    """The feedback terms and their weights (see module docstring).

    Args:
        top: the first pass's best chunks ``((article_id, ord), score)``, best first.
        texts: the text of each of those chunks (title, headings and body).
        own: the query's terms (left out).
        analyzer: the index's analyzer.
        idf: body idf of terms (:meth:`kb.search.bm25.BM25Index.idf`).
        settings: how many docs and terms, and the weight.
    """
    chosen = [(key, score) for key, score in top[: settings.docs] if key in texts and score > 0]
    total = sum(score for _, score in chosen)
    if not chosen or total <= 0:
        return {}
    model: dict[str, float] = {}
    for key, score in chosen:
        terms = [t for t in analyzer.terms(texts[key]) if t not in own and (len(t) >= 2 or t.isascii())]
        if not terms:
            continue
        counts = Counter(terms)
        for term, tf in counts.items():
            model[term] = model.get(term, 0.0) + (score / total) * tf / len(terms)
    if not model:
        return {}
    candidates = sorted(model, key=lambda t: (-model[t], t))[: settings.terms * 4]
    idfs = idf(candidates)
    kept = [t for t in candidates if idfs.get(t, 0.0) >= settings.min_idf][: settings.terms]
    if not kept:
        return {}
    best = model[kept[0]]
    return {t: round(settings.weight * model[t] / best, 4) for t in kept}
