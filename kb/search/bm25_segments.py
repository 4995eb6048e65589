"""What kb keeps of each whoosh segment of the BM25 leg: stored keys, field lengths, postings, term lists, and
each term's documents across fields (:mod:`kb.search.bm25_scorer` scores with them).

whoosh segments are immutable (only their deletion sets change), so all of it is read once per segment and
shared by every view of it (:class:`kb.search.bm25_scorer.SegmentCache`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: Fields whose whole term list a segment keeps as a set once read, so that a term a field does not hold costs
#: no look-up of whoosh's on-disk term table (16 us each; a query seen for the first time looked up ~35 absent
#: (field, term) pairs). Small fields only: on the shared articles (7,726 chunks, two segments) title, headings,
#: tags and codes hold 14k terms, listed in 0.05 s; body 39k, and nearly every query term is in it anyway.
LEXICON_FIELDS = frozenset({"title", "headings", "tags", "codes"})

EMPTY_IDS = np.zeros(0, dtype=np.int64)
EMPTY_TF = np.zeros(0, dtype=np.float64)
#: The one-row index arrays of the first 16 fields (a term most often is in one field only).
_ROW = [np.array([row], dtype=np.intp) for row in range(16)]
#: A segment's documents of a term across fields: ids ``(m,)``, field rows ``(r,)``, frequencies, lengths ``(r, m)``.
Across = tuple[npt.NDArray[np.int64], npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]


@dataclass
class Segment:
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
    #: Per (term, fields): the documents holding the term in any of the fields ``(m,)``, which of the fields hold
    #: it (positions in the fields, ascending), and for those (rows) its frequency and the field's length in each
    #: of the documents ``(rows, m)`` (0 where a field lacks it).
    across: dict[tuple[str, tuple[str, ...]], Across] = field(default_factory=dict)
    #: The (term, fields) computed once on this segment without :attr:`across` (its first view: kept only when a
    #: later commit's view asks again, since building it costs a first sight 7-10 % more).
    seen_once: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    #: whoosh's document frequency per (field, term): its term table's count, deleted documents included (a
    #: segment's term table never changes; merges make new segments).
    doc_frequencies: dict[tuple[str, str], int] = field(default_factory=dict)
    #: The whole term list of each field of :data:`LEXICON_FIELDS` read so far (whoosh's term bytes).
    lexicons: dict[str, frozenset[bytes]] = field(default_factory=dict)
    #: The ids of the articles of every document of the segment, deleted ones included.
    stored_articles: frozenset[int] = frozenset()


def load_segment(reader: Any, segment_id: str) -> Segment:
    n = reader.doc_count_all()
    stored_ids = np.full(n, -1, dtype=np.int64)
    ords = np.zeros(n, dtype=np.int64)
    for docnum in range(n):
        stored = reader.stored_fields(docnum)
        stored_ids[docnum] = int(stored["article_id"])
        ords[docnum] = int(stored["ord"])
    return Segment(
        reader,
        segment_id,
        n,
        live_ids(reader, stored_ids),
        stored_ids,
        ords,
        stored_articles=frozenset(np.unique(stored_ids).tolist()),
    )


def live_ids(reader: Any, stored_ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
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


def term_across(segment: Segment, term: str, fieldnames: tuple[str, ...]) -> Across:
    """``term`` in ``fieldnames`` of one segment (:attr:`Segment.across`), remembered for the segment's life."""
    key = (term, fieldnames)
    cached = segment.across.get(key)
    if cached is not None:
        return cached
    held = []
    for row, fieldname in enumerate(fieldnames):
        ids, tf = postings(segment, fieldname, term)
        if len(ids):
            held.append((row, fieldname, ids, tf))
    if len(held) == 1:  # the usual case (body only): the field's own arrays
        row, fieldname, ids, tf = held[0]
        one = _ROW[row] if row < len(_ROW) else np.array([row], dtype=np.intp)
        cached = (ids, one, tf[None, :], segment.lengths[fieldname][ids][None, :])
    else:
        ids = np.unique(np.concatenate([ids for _, _, ids, _ in held])) if held else EMPTY_IDS
        tfs = np.zeros((len(held), len(ids)), dtype=np.float64)
        lengths = np.zeros((len(held), len(ids)), dtype=np.float64)
        for i, (_, fieldname, field_ids, field_tf) in enumerate(held):
            where = np.searchsorted(ids, field_ids)
            tfs[i, where] = field_tf
            lengths[i, where] = segment.lengths[fieldname][field_ids]
        cached = (ids, np.array([row for row, *_ in held], dtype=np.intp), tfs, lengths)
    segment.across[key] = cached
    return cached


def postings(segment: Segment, fieldname: str, term: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
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
            segment.postings[key] = cached = (EMPTY_IDS, EMPTY_TF)
            return cached
    cached = read_postings(segment.reader, fieldname, term)
    segment.postings[key] = cached
    return cached


def read_postings(reader: Any, fieldname: str, term: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Document numbers and term frequencies of one posting list, read a block at a time when the matcher is
    whoosh 3's block matcher, a posting at a time otherwise."""
    from whoosh.reading import TermNotFound

    try:  # one look-up of the term table (a test with ``in`` first was a second one)
        matcher = reader.postings(fieldname, term)
    except TermNotFound:
        return EMPTY_IDS, EMPTY_TF
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
        return EMPTY_IDS, EMPTY_TF
    return np.concatenate(ids), np.concatenate(weights)
