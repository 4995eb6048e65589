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

Postings and field lengths are read from each segment once and kept in memory per segment (whoosh segments
are immutable; only their deletion sets change), so a commit re-reads only the new segment. Each term's
pseudo-frequency over all fields and segments is computed on its first query after a commit and kept until the
next (:class:`IndexView`): a query then costs one sparse update per term (issue 14, with the other caches of
the search path: 53k Python calls a query before, 6k after, ``bench/results/perf-issue14.md``).
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

#: BM25 parameters (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework: BM25 and Beyond",
#: usual defaults), used for every field.
K1 = 1.2
B = 0.75

#: Fields whose whole term list a segment keeps as a set once read, so that a term a field does not hold costs
#: no look-up of whoosh's on-disk term table (16 us each; a query seen for the first time looked up ~35 absent
#: (field, term) pairs). Small fields only: on the shared articles (7,726 chunks, two segments) title, headings,
#: tags and codes hold 14k terms, listed in 0.05 s; body 39k, and nearly every query term is in it anyway.
LEXICON_FIELDS = frozenset({"title", "headings", "tags", "codes"})

_EMPTY_IDS = np.zeros(0, dtype=np.int64)
_EMPTY_TF = np.zeros(0, dtype=np.float64)
#: A term and the field weights its pseudo-frequency was computed with.
_TermKey = tuple[str, tuple[tuple[str, float], ...]]


@dataclass
class _Segment:
    """What is cached of one whoosh segment: postings per (field, term), field lengths, stored keys. The dicts are
    shared by every view of the segment and only ever gain entries (a segment's files never change); ``reader`` and
    ``article_ids`` are one view's (:class:`SegmentCache`)."""

    reader: Any
    segment_id: str
    doc_count_all: int
    article_ids: npt.NDArray[np.int64]  # (doc_count_all,), -1 for a deleted document (of this reader)
    stored_ids: npt.NDArray[np.int64]  # (doc_count_all,), the article id of every document, deleted ones included
    ords: npt.NDArray[np.int64]  # (doc_count_all,)
    lengths: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)  # field -> (doc_count_all,)
    postings: dict[tuple[str, str], tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(default_factory=dict)
    #: Per (term, fields): the documents holding the term in any of the fields, and per field (rows, in the
    #: fields' order) its frequency and the field's length in each of them (0 where the field lacks it).
    across: dict[
        tuple[str, tuple[str, ...]], tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]
    ] = field(default_factory=dict)
    #: whoosh's document frequency per (field, term): its term table's count, deleted documents included (a
    #: segment's term table never changes; merges make new segments).
    doc_frequencies: dict[tuple[str, str], int] = field(default_factory=dict)
    #: The whole term list of each field of :data:`LEXICON_FIELDS` read so far (whoosh's term bytes).
    lexicons: dict[str, frozenset[bytes]] = field(default_factory=dict)
    #: The ids of the articles of every document of the segment, deleted ones included.
    stored_articles: frozenset[int] = frozenset()


@dataclass
class IndexView:
    """One searcher's segments, with what every query over them shares: document count, article ids (-1 for
    a deleted document) and ords of all documents, average field lengths, and each term's per-document
    BM25F pseudo-frequency (computed on first use, kept until the next commit). ``asked`` holds the term keys
    searches asked for on this view, oldest first (a warm-up of the next commit's view computes those, not the ones
    warmed into this view and never asked since)."""

    leaves: list[tuple[_Segment, int]]
    total: int
    article_ids: npt.NDArray[np.int64]  # (total,)
    ords: npt.NDArray[np.int64]  # (total,)
    searcher: Any
    avg: dict[str, float] = field(default_factory=dict)
    terms: dict[_TermKey, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(default_factory=dict)
    asked: dict[_TermKey, None] = field(default_factory=dict)

    def avg_length(self, fieldname: str) -> float:
        """whoosh's average length of ``fieldname`` over all documents (1.0 when 0 or unknown)."""
        cached = self.avg.get(fieldname)
        if cached is None:
            cached = self.avg[fieldname] = self.searcher.avg_field_length(fieldname) or 1.0
        return cached


class SegmentCache:
    """Per-segment postings and lengths, shared by the views of successive commits of one index.

    Copy-on-write: a view's segments (:class:`_Segment`) are never changed once the view is built, so a search
    still running on the view of an older searcher reads exactly that searcher's documents and deletions while the
    view of a newer commit is built beside it (:meth:`kb.search.bm25.BM25Index.reopen`). What a segment's files
    fix for its whole life (stored keys, postings, field lengths, term lists, document frequencies) is read once
    per segment id and shared by every view that holds the segment; only the reader and the deletion mask are the
    view's own.
    """

    def __init__(self) -> None:
        self._segments: dict[str, _Segment] = {}  # segment id -> the segment as last loaded (its base facts)
        self._lock = threading.Lock()

    def view(self, searcher: Any, previous: IndexView | None = None) -> tuple[IndexView, frozenset[int] | None]:
        """A new :class:`IndexView` of ``searcher``, and the ids of the articles whose documents differ from
        ``previous`` (documents in new segments, newly deleted ones, and the live ones of segments merged away:
        a superset, :mod:`kb.search.lineage`); None for the second when ``previous`` is None.

        Neither ``previous`` nor any other view already built is changed. Safe to call from several threads
        (segments are loaded under this cache's lock); the caller uses ``searcher`` from one thread at a time."""
        before = {seg.segment_id: seg for seg, _ in previous.leaves} if previous is not None else {}
        leaves: list[tuple[_Segment, int]] = []
        changed: set[int] = set()
        with self._lock:
            live = set()
            for reader, offset in _leaf_readers(searcher):
                seg_id = reader.segment().segment_id()
                live.add(seg_id)
                base = self._segments.get(seg_id)
                if base is None:
                    base = self._segments[seg_id] = _load_segment(reader, seg_id)
                    segment = base
                else:
                    segment = dataclasses.replace(base, reader=reader, article_ids=_live_ids(reader, base.stored_ids))
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
        article_ids = np.concatenate([seg.article_ids for seg, _ in leaves]) if leaves else _EMPTY_IDS
        ords = np.concatenate([seg.ords for seg, _ in leaves]) if leaves else _EMPTY_IDS
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
        return _EMPTY_IDS, _EMPTY_TF
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
    weights = np.array([[w] for w in field_weights.values()], dtype=np.float64)  # (fields, 1)
    avg = np.array([[view.avg_length(f)] for f in fieldnames], dtype=np.float64)
    doc_ids: list[npt.NDArray[np.int64]] = []
    parts: list[npt.NDArray[np.float64]] = []
    for seg, offset in view.leaves:
        ids, tf, lengths = _across(seg, term, fieldnames)
        if len(ids):  # the fields summed in their order, a field without the term adding exactly 0.0
            doc_ids.append(ids + offset)
            parts.append((weights * tf / ((1 - B) + B * lengths / avg)).sum(axis=0))
    if doc_ids:  # segments in index order, each ascending: already sorted and distinct
        unique, pseudo_tf = np.concatenate(doc_ids), np.concatenate(parts)
        nonzero = pseudo_tf != 0
        cached = (unique[nonzero], pseudo_tf[nonzero])
    else:
        cached = (_EMPTY_IDS, _EMPTY_TF)
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


def _load_segment(reader: Any, segment_id: str) -> _Segment:
    n = reader.doc_count_all()
    stored_ids = np.full(n, -1, dtype=np.int64)
    ords = np.zeros(n, dtype=np.int64)
    for docnum in range(n):
        stored = reader.stored_fields(docnum)
        stored_ids[docnum] = int(stored["article_id"])
        ords[docnum] = int(stored["ord"])
    return _Segment(
        reader,
        segment_id,
        n,
        _live_ids(reader, stored_ids),
        stored_ids,
        ords,
        stored_articles=frozenset(np.unique(stored_ids).tolist()),
    )


def _live_ids(reader: Any, stored_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``stored_ids`` with -1 for each document ``reader`` holds deleted: a new array when there is a deletion
    (one numpy assignment from whoosh's deletion set, instead of an ``is_deleted`` call per document),
    ``stored_ids`` itself otherwise (never written to)."""
    if not reader.has_deletions():
        return stored_ids
    deleted = getattr(reader, "deleted_docs_set", None)  # whoosh's SegmentReader: a cached frozenset of docnums
    if deleted is None:  # pragma: no cover - another reader class
        deleted = [d for d in range(len(stored_ids)) if reader.is_deleted(d)]
    docnums = np.fromiter(deleted, dtype=np.int64, count=len(deleted))
    live = stored_ids.copy()
    live[docnums] = -1
    return live


def _across(
    segment: _Segment, term: str, fieldnames: tuple[str, ...]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``term`` in ``fieldnames`` of one segment (:attr:`_Segment.across`): documents ``(m,)`` ascending, and
    frequencies and field lengths ``(len(fieldnames), m)``; remembered for the segment's life."""
    key = (term, fieldnames)
    cached = segment.across.get(key)
    if cached is not None:
        return cached
    postings = [_postings(segment, f, term) for f in fieldnames]
    held = [ids for ids, _ in postings if len(ids)]
    ids = held[0] if len(held) == 1 else np.unique(np.concatenate(held)) if held else _EMPTY_IDS
    tf = np.zeros((len(fieldnames), len(ids)), dtype=np.float64)
    lengths = np.zeros((len(fieldnames), len(ids)), dtype=np.float64)
    for row, (fieldname, (field_ids, field_tf)) in enumerate(zip(fieldnames, postings, strict=True)):
        if len(field_ids):
            where = np.searchsorted(ids, field_ids)
            tf[row, where] = field_tf
            lengths[row, where] = segment.lengths[fieldname][field_ids]
    segment.across[key] = cached = (ids, tf, lengths)
    return cached


def _postings(segment: _Segment, fieldname: str, term: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    key = (fieldname, term)
    cached = segment.postings.get(key)
    if cached is not None:
        return cached
    if fieldname not in segment.lengths:
        reader = segment.reader
        segment.lengths[fieldname] = np.array(
            [reader.doc_field_length(d, fieldname, 1) for d in range(segment.doc_count_all)], dtype=np.float64
        )
    if fieldname in LEXICON_FIELDS:
        lexicon = segment.lexicons.get(fieldname)
        if lexicon is None:
            lexicon = segment.lexicons[fieldname] = frozenset(segment.reader.lexicon(fieldname))
        if term.encode("utf-8") not in lexicon:
            segment.postings[key] = cached = (_EMPTY_IDS, _EMPTY_TF)
            return cached
    cached = _read_postings(segment.reader, fieldname, term)
    segment.postings[key] = cached
    return cached


def _read_postings(reader: Any, fieldname: str, term: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Document numbers and term frequencies of one posting list, read a block at a time when the matcher is
    whoosh 3's block matcher, a posting at a time otherwise."""
    from whoosh.reading import TermNotFound

    try:  # one look-up of the term table (a test with ``in`` first was a second one)
        matcher = reader.postings(fieldname, term)
    except TermNotFound:
        return _EMPTY_IDS, _EMPTY_TF
    ids: list[Any] = []
    weights: list[Any] = []
    if all(hasattr(matcher, a) for a in ("_read_ids", "_read_weights", "_next_block", "_ids", "_weights")):
        while matcher.is_active():
            matcher._read_ids()
            matcher._read_weights()
            ids.append(np.asarray(matcher._ids, dtype=np.int64))
            weights.append(np.asarray(matcher._weights, dtype=np.float64))
            matcher._next_block()
    else:  # pragma: no cover - another codec
        one_ids, one_weights = [], []
        while matcher.is_active():
            one_ids.append(matcher.id())
            one_weights.append(matcher.weight())
            matcher.next()
        ids, weights = [np.asarray(one_ids, dtype=np.int64)], [np.asarray(one_weights, dtype=np.float64)]
    if not ids:
        return _EMPTY_IDS, _EMPTY_TF
    return np.concatenate(ids), np.concatenate(weights)
