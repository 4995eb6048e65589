"""BM25F scoring of term queries with numpy over whoosh's segments.

whoosh stays the BM25 index of record (it stores, merges and deletes); this module only scores. whoosh scores
a query in pure Python, one posting at a time, with the cost growing with the number of term x field clauses
(about 50 for a Chinese question with synonyms): 37 ms p50 / 61 ms p95 per query on the 7,726 chunks of the
shared articles. Here a query is a handful of vectorised numpy operations per term and field (12 / 16 ms for
the whole BM25 search, `bench/results`).

The score is BM25F as defined by Robertson & Zaragoza 2009 ("The Probabilistic Relevance Framework: BM25 and
Beyond", section 3.2): a term's frequencies in the fields are length-normalised, weighted and summed *before*
the saturation, so a term repeated in title and body is not counted as two independent matches::

    tf~(t, d)  = sum over fields f of  w_f * tf_f(t, d) / ((1 - B) + B * len_f(d) / avglen_f)
    score(d)   = sum over query terms t of  q_t * idf(t) * tf~(t, d) / (K1 + tf~(t, d))
    idf(t)     = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))       (Lucene's BM25 idf, always > 0)

``w_f`` are the field weights, ``q_t`` the query weight of a term (1, or less for a synonym expansion), ``N`` all
documents and ``df(t)`` the documents holding ``t`` in any field, both counting documents deleted but not yet
merged away (whoosh's convention for its statistics); ``len_f(d)`` is whoosh's stored field length (quantised
to one byte) and ``avglen_f`` the total field length over ``N``. whoosh's own ``BM25F`` scorer is not BM25F:
it saturates each field separately and adds the fields up. Measured on tidb-faq-dev (BM25 leg alone,
nDCG@10): 0.782 with whoosh's per-field sum, 0.821 with BM25F, both at K1 = 1.2, B = 0.75.

Postings and field lengths are read from each segment once and kept in memory per segment
(:mod:`kb.search.bm25_segments`) (whoosh segments are immutable; only their deletion sets change), so a commit
re-reads only the new segment. Each term's pseudo-frequency over all fields and segments is computed on its first
query after a commit and kept until the next (:class:`IndexView`): a query then costs one sparse update per term
(issue 14, with the other caches of the search path: 53k Python calls a query before, 6k after,
``bench/results/perf-issue14.md``).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from kb.search.bm25_segments import (
    EMPTY_IDS,
    EMPTY_TF,
    Segment,
    live_ids,
    load_segment,
    postings,
    term_across,
)

#: BM25 parameters (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework: BM25 and Beyond",
#: usual defaults), used for every field.
K1 = 1.2
B = 0.75

#: A term and the field weights its pseudo-frequency was computed with.
_TermKey = tuple[str, tuple[tuple[str, float], ...]]


@dataclass
class IndexView:
    """One searcher's segments, with what every query over them shares: document count, article ids (-1 for
    a deleted document) and ords of all documents, average field lengths, and each term's per-document
    BM25F pseudo-frequency (computed on first use, kept until the next commit). ``asked`` holds the term keys
    searches asked for on this view, oldest first (a warm-up of the next commit's view computes those, not the ones
    warmed into this view and never asked since)."""

    leaves: list[tuple[Segment, int]]
    total: int
    article_ids: npt.NDArray[np.int64]  # (total,)
    ords: npt.NDArray[np.int64]  # (total,)
    searcher: Any
    avg: dict[str, float] = field(default_factory=dict)
    terms: dict[_TermKey, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(default_factory=dict)
    asked: dict[_TermKey, None] = field(default_factory=dict)
    columns: dict[tuple[tuple[str, float], ...], tuple[npt.NDArray[np.float64], ...]] = field(default_factory=dict)

    def field_columns(self, field_weights: tuple[tuple[str, float], ...]) -> tuple[npt.NDArray[np.float64], ...]:
        """The weights and average lengths of ``field_weights``' fields as ``(fields, 1)`` columns (remembered)."""
        cached = self.columns.get(field_weights)
        if cached is None:
            weights = np.array([[w] for _, w in field_weights], dtype=np.float64)
            avg = np.array([[self.avg_length(f)] for f, _ in field_weights], dtype=np.float64)
            cached = self.columns[field_weights] = (weights, avg)
        return cached

    def avg_length(self, fieldname: str) -> float:
        """whoosh's average length of ``fieldname`` over all documents (1.0 when 0 or unknown)."""
        cached = self.avg.get(fieldname)
        if cached is None:
            cached = self.avg[fieldname] = self.searcher.avg_field_length(fieldname) or 1.0
        return cached


class SegmentCache:
    """Per-segment postings and lengths, shared by the views of successive commits of one index.

    Copy-on-write: a view's segments (:class:`Segment`) are never changed once the view is built, so a search
    still running on the view of an older searcher reads exactly that searcher's documents and deletions while the
    view of a newer commit is built beside it (:meth:`kb.search.bm25.BM25Index.reopen`). What a segment's files
    fix for its whole life (stored keys, postings, field lengths, term lists, document frequencies) is read once
    per segment id and shared by every view that holds the segment; only the reader and the deletion mask are the
    view's own.
    """

    def __init__(self) -> None:
        self._segments: dict[str, Segment] = {}  # segment id -> the segment as last loaded (its base facts)
        self._lock = threading.Lock()

    def view(self, searcher: Any, previous: IndexView | None = None) -> tuple[IndexView, frozenset[int] | None]:
        """A new :class:`IndexView` of ``searcher``, and the ids of the articles whose documents differ from
        ``previous`` (documents in new segments, newly deleted ones, and the live ones of segments merged away:
        a superset, :mod:`kb.search.lineage`); None for the second when ``previous`` is None.

        Neither ``previous`` nor any other view already built is changed. Safe to call from several threads
        (segments are loaded under this cache's lock); the caller uses ``searcher`` from one thread at a time."""
        before = {seg.segment_id: seg for seg, _ in previous.leaves} if previous is not None else {}
        leaves: list[tuple[Segment, int]] = []
        changed: set[int] = set()
        with self._lock:
            live = set()
            for reader, offset in _leaf_readers(searcher):
                seg_id = reader.segment().segment_id()
                live.add(seg_id)
                base = self._segments.get(seg_id)
                if base is None:
                    base = self._segments[seg_id] = load_segment(reader, seg_id)
                    segment = base
                else:
                    segment = dataclasses.replace(base, reader=reader, article_ids=live_ids(reader, base.stored_ids))
                old = before.get(seg_id)
                if old is None:
                    changed |= segment.stored_articles
                else:
                    changed.update(old.article_ids[(old.article_ids >= 0) & (segment.article_ids < 0)].tolist())
                leaves.append((segment, offset))
            for seg_id in set(self._segments) - live:
                del self._segments[seg_id]
        for seg_id in set(before) - {seg.segment_id for seg, _ in leaves}:
            gone = before[seg_id].article_ids
            changed.update(np.unique(gone[gone >= 0]).tolist())
        total = sum(seg.doc_count_all for seg, _ in leaves)
        article_ids = np.concatenate([seg.article_ids for seg, _ in leaves]) if leaves else EMPTY_IDS
        ords = np.concatenate([seg.ords for seg, _ in leaves]) if leaves else EMPTY_IDS
        return IndexView(leaves, total, article_ids, ords, searcher), (
            frozenset(changed) if previous is not None else None
        )

    def clear(self) -> None:
        """Forget every segment (the index is being closed)."""
        with self._lock:
            self._segments.clear()


def score(
    view: IndexView,
    terms: Mapping[str, float],
    field_weights: Mapping[str, float],
    limit: int,
) -> list[tuple[int, int, float]]:
    """The best ``limit`` chunks for ``terms`` (term -> query weight) by BM25F over ``field_weights``
    (field -> weight), as (article_id, ord, score), score descending, ties in index order; only chunks with a
    score above 0. Per term, one vectorised update of the documents holding it (their pseudo-frequency is
    computed once per commit, :func:`term_frequencies`)."""
    hits, scores = _top(view, terms, field_weights, limit)
    article_ids, ords = view.article_ids, view.ords
    return [(int(article_ids[i]), int(ords[i]), float(scores[i])) for i in hits]


def score_keys(
    view: IndexView,
    terms: Mapping[str, float],
    field_weights: Mapping[str, float],
    limit: int,
) -> list[tuple[tuple[int, int], float]]:
    """:func:`score` as ``((article_id, ord), score)`` pairs, built from the arrays in three ``tolist`` calls
    (the search path's form: no object and no ``int()``/``float()`` per candidate). Same chunks, order and
    scores."""
    hits, scores = _top(view, terms, field_weights, limit)
    keys = zip(view.article_ids[hits].tolist(), view.ords[hits].tolist(), strict=True)
    return list(zip(keys, scores[hits].tolist(), strict=True))


def _top(
    view: IndexView, terms: Mapping[str, float], field_weights: Mapping[str, float], limit: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Document numbers of the best ``limit`` chunks, best first (ties in index order), and every document's
    score ``(view.total,)``."""
    total = view.total
    if total == 0 or not terms or limit <= 0:
        return EMPTY_IDS, EMPTY_TF
    scores = np.zeros(total, dtype=np.float64)
    for term, query_weight in terms.items():
        ids, pseudo_tf = term_frequencies(view, term, field_weights)
        df = len(ids)  # documents holding the term in any field (weights are > 0)
        if not df:
            continue
        idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
        scores[ids] += query_weight * idf * pseudo_tf / (K1 + pseudo_tf)
    scores[view.article_ids < 0] = 0.0
    hits = np.flatnonzero(scores > 0)
    if len(hits) > limit:  # keep every score tied with the limit-th, so ties are cut in index order below
        kth = np.partition(scores[hits], len(hits) - limit)[len(hits) - limit]
        hits = hits[scores[hits] >= kth]
    hits = hits[np.lexsort((hits, -scores[hits]))][:limit]
    return hits, scores


def term_frequencies(
    view: IndexView, term: str, field_weights: Mapping[str, float], *, asked: bool = True
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The documents holding ``term`` in a field of ``field_weights`` (ascending document numbers, deleted
    ones included, as whoosh counts them) and their BM25F pseudo-frequency ``tf~(t, d)`` (module docstring),
    the fields summed in the order of ``field_weights``; remembered in ``view``, and recorded in ``view.asked``
    unless ``asked`` is False (a warm-up's computation)."""
    key = (term, tuple(field_weights.items()))
    if asked:
        view.asked.pop(key, None)  # the most recent last
        view.asked[key] = None
    cached = view.terms.get(key)
    if cached is not None:
        return cached
    fieldnames = tuple(field_weights)
    weights, avg = view.field_columns(key[1])
    doc_ids: list[npt.NDArray[np.int64]] = []
    parts: list[npt.NDArray[np.float64]] = []
    by_field = False  # some segment's documents are listed once per field holding the term
    for seg, offset in view.leaves:
        seg_key = (term, fieldnames)
        if seg_key not in seg.across and seg_key not in seg.seen_once:  # first sight: field by field
            seg.seen_once.add(seg_key)
            for row, fieldname in enumerate(fieldnames):
                ids, tf = postings(seg, fieldname, term)
                if len(ids):
                    by_field = True
                    doc_ids.append(ids + offset)
                    parts.append(weights[row, 0] * tf / ((1 - B) + B * seg.lengths[fieldname][ids] / avg[row, 0]))
            continue
        ids, rows, tf, lengths = term_across(seg, term, fieldnames)
        if len(ids):  # the fields holding it summed in their order, as a sum over the fields would add them
            pseudo = weights[rows] * tf / ((1 - B) + B * lengths / avg[rows])
            doc_ids.append(ids + offset)
            parts.append(pseudo[0] if len(rows) == 1 else pseudo.sum(axis=0))
    if doc_ids:
        if by_field:  # a document's fields summed in their order (bincount adds in array order)
            unique, inverse = np.unique(np.concatenate(doc_ids), return_inverse=True)
            pseudo_tf = np.bincount(inverse, weights=np.concatenate(parts), minlength=len(unique))
        else:  # segments in index order, each ascending: already sorted and distinct
            unique, pseudo_tf = np.concatenate(doc_ids), np.concatenate(parts)
        nonzero = pseudo_tf != 0
        cached = (unique[nonzero], pseudo_tf[nonzero])
    else:
        cached = (EMPTY_IDS, EMPTY_TF)
    view.terms[key] = cached
    return cached


def body_idf(view: IndexView, term: str) -> float:
    """whoosh's idf of ``term`` in the ``body`` field, ``log(N / (df + 1)) + 1`` (``whoosh.scoring.WeightingModel.idf``:
    ``N`` all documents and ``df`` the documents holding it, deleted ones included), or 0.0 when no document holds
    it: the same float as ``searcher.idf("body", term)``, with each segment's document frequency remembered for as
    long as the segment lives (whoosh looks its term table up twice per term and commit: ~5% of a query seen for
    the first time, ``bench/results/perf-session7.md``)."""
    df = 0
    for seg, _ in view.leaves:
        key = ("body", term)
        found = seg.doc_frequencies.get(key)
        if found is None:
            found = seg.doc_frequencies[key] = int(seg.reader.doc_frequency("body", term))
        df += found
    return math.log(view.total / (df + 1)) + 1 if df else 0.0


def holds(view: IndexView, term: str, field_weights: Mapping[str, float]) -> bool:
    """Whether a live (not deleted) document holds ``term`` in a field of ``field_weights``: exactly when
    :func:`score` of ``{term: w}`` finds a chunk, without scoring."""
    ids, _ = term_frequencies(view, term, field_weights)
    return bool(len(ids)) and bool(np.any(view.article_ids[ids] >= 0))


def _leaf_readers(searcher: Any) -> list[tuple[Any, int]]:
    reader = searcher.reader()
    if reader.is_atomic():
        return [(reader, 0)] if reader.doc_count_all() else []
    return [(r, offset) for r, offset in reader.leaf_readers() if r.doc_count_all()]
