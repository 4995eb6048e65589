"""The BM25 leg: a whoosh (whoosh-reloaded) index of chunks, scored with BM25F.

Documents are chunks. Fields hold terms produced by :class:`kb.search.text.TextAnalyzer`, joined by
spaces, so whoosh itself only splits on spaces: index and query analysis are ours, in one place, and no
custom analyzer class is pickled into whoosh's table of contents. Queries are built as term queries
directly (never through whoosh's query parser, whose syntax would turn ``NOT``, ``*`` or quotes in a
user's text into operators).

Scoring: BM25F (Robertson & Zaragoza 2009) over the fields weighted by :data:`FIELD_BOOSTS`, computed with
numpy by :mod:`kb.search.bm25_scorer` from whoosh's postings. Only documents that match at least one term are
returned, so every hit has a score above 0 (case BL-09).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kb.errors import IndexUnavailableError
from kb.search import bm25_scorer, lineage

logger = logging.getLogger(__name__)

#: Weight of a term occurrence in each field (BM25F field weights ``w_f``): title and headings above body, tags,
#: and identifiers (error codes, versions, paths) highest so an exact identifier match ranks near the top.
FIELD_BOOSTS = {"title": 2.0, "headings": 1.5, "body": 1.0, "tags": 1.5, "codes": 3.0}

#: Terms (with their field weights) whose BM25F pseudo-frequencies :meth:`BM25Index.reopen` computes on the new
#: commit before searches see it: the most recent ones asked under the previous commit. Without it the first
#: searches after each commit read the new segment's postings and field lengths and recompute every term, under
#: the search lock (session 11: ~25 ms of CPU for the 15 queries of bench/concurrent_writes.py after a commit of two
#: articles, against ~8 ms for the follow itself); a bound, so a commit after very many distinct queries stays cheap.
WARM_TERMS = 512

#: Seconds a writer waits for the whoosh lock before giving up.
WRITER_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ChunkDocument:
    """A chunk as the BM25 index stores it: each field is a list of analyzer terms."""

    article_id: int
    ord: int
    title: list[str]
    headings: list[str]
    body: list[str]
    tags: list[str]
    codes: list[str]


@dataclass(frozen=True, slots=True)
class BM25Hit:
    """A chunk found by the BM25 leg. ``score`` is the BM25F score, > 0, unbounded above."""

    article_id: int
    ord: int
    score: float


def _schema() -> Any:
    from whoosh import fields
    from whoosh.analysis import SpaceSeparatedTokenizer

    terms = SpaceSeparatedTokenizer()
    return fields.Schema(
        chunk_id=fields.ID(stored=True, unique=True),
        article_id=fields.ID(stored=True),
        ord=fields.STORED(),
        title=fields.TEXT(analyzer=terms, phrase=True),
        headings=fields.TEXT(analyzer=terms, phrase=True),
        body=fields.TEXT(analyzer=terms, phrase=True),
        tags=fields.TEXT(analyzer=terms, phrase=False),
        codes=fields.TEXT(analyzer=terms, phrase=False),
    )


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One commit as searches read it: whoosh's searcher, its segment view and the idf of terms asked so far."""

    searcher: Any
    view: bm25_scorer.IndexView
    idf: dict[str, float]


class BM25Index:
    """A whoosh index in one folder: one writer at a time, a shared searcher replaced after each commit.

    Searches take ``_search_lock`` (whoosh's readers are not safe to share between threads) and read the current
    :class:`_Snapshot`. :meth:`reopen` builds the next snapshot without that lock (under ``_reopen_lock``) and
    only swaps the reference under it, so a search waits at most for another search, never for a searcher to be
    opened; a search sees one commit whole, never part of one (:class:`kb.search.bm25_scorer.SegmentCache` is
    copy-on-write)."""

    def __init__(self, index: Any, path: Path) -> None:
        self._ix = index
        self.path = path
        self._write_lock = threading.Lock()
        self._search_lock = threading.Lock()  # held by each search, and for the swap of _state
        self._reopen_lock = threading.Lock()  # one reopen at a time
        self._state: _Snapshot | None = None
        self._segments = bm25_scorer.SegmentCache()
        self._version = lineage.new_version()
        self._viewed: int | None = None  # the version whose searcher and view were built before it was visible

    @property
    def version(self) -> int:
        """A number that changes after every commit (every applied outbox batch), unique among all indexes of
        the process: what was read from the database for one version is valid while it lasts
        (:mod:`kb.search.article_cache`)."""
        return self._version

    @classmethod
    def create(cls, path: Path) -> BM25Index:
        """Create an empty index in ``path`` (created if missing)."""
        from whoosh import index

        path.mkdir(parents=True, exist_ok=True)
        return cls(index.create_in(str(path), _schema()), path)

    @classmethod
    def open(cls, path: Path) -> BM25Index:
        """Open the index in ``path``.

        Raises:
            IndexUnavailableError: no index there, or whoosh cannot read it.
        """
        from whoosh import index

        try:
            return cls(index.open_dir(str(path)), path)
        except Exception as exc:  # whoosh raises EmptyIndexError, OSError, pickling errors...
            raise IndexUnavailableError(f"Cannot open BM25 index {path}: {exc}") from exc

    def close(self) -> None:
        """Close the searcher and the index files."""
        with self._reopen_lock, self._search_lock:
            if self._state is not None:
                self._state.searcher.close()
                self._state = None
            self._segments.clear()
        self._ix.close()

    def replace_articles(self, documents: Iterable[ChunkDocument], article_ids: Iterable[int]) -> None:
        """In one commit: delete every chunk of ``article_ids``, then add ``documents``.

        On any error the writer is cancelled (its lock released, nothing written) and the error raised
        as :class:`IndexUnavailableError`: a failure can never leave a stale lock (case BL-38).
        """
        from whoosh.writing import LockError

        with self._write_lock:
            try:
                writer = self._ix.writer(timeout=WRITER_TIMEOUT_S)
            except LockError as exc:
                raise IndexUnavailableError(f"BM25 index {self.path} is locked by another writer") from exc
            try:
                for article_id in article_ids:
                    writer.delete_by_term("article_id", str(article_id))
                for doc in documents:
                    writer.add_document(
                        chunk_id=f"{doc.article_id}:{doc.ord}",
                        article_id=str(doc.article_id),
                        ord=doc.ord,
                        title=" ".join(doc.title),
                        headings=" ".join(doc.headings),
                        body=" ".join(doc.body),
                        tags=" ".join(doc.tags),
                        codes=" ".join(doc.codes),
                    )
                writer.commit()
            except BaseException as exc:
                writer.cancel()
                raise IndexUnavailableError(f"Cannot write BM25 index {self.path}: {exc}") from exc
        self.reopen()

    def reopen(self) -> None:
        """Read the latest commit from now on (this process's, or another process's writing the same folder): the
        searcher is replaced and :attr:`version` changes.

        Once the index has been searched, the new searcher and its segment view are built here, before the new
        version is visible (so every read made under a version is later than the index state it names), and the
        articles whose documents changed since the previous version are recorded (:func:`kb.search.lineage.record`):
        the caches of search keep the rows of the other articles across the commit. The pseudo-frequencies of the
        terms asked under the previous commit (at most :data:`WARM_TERMS`) are computed on the new view too. All
        this runs without ``_search_lock`` (searches go on, on the previous commit, meanwhile); only copying the
        list of asked terms and the swap of the snapshot and the version take it. Before the first search the
        searcher is left to it (a process that never searches opens none per commit)."""
        with self._reopen_lock:
            previous = self._state  # only a reopen or close replaces a snapshot that is there (both hold our lock)
            fresh: _Snapshot | None = None
            changed: frozenset[int] | None = None
            if previous is not None:
                # A new searcher, not Searcher.refresh(): refresh() misses deletion-only commits.
                searcher = self._open_searcher()
                view, changed = self._segments.view(searcher, previous.view)
                with self._search_lock:  # the terms searches asked under the previous commit (they add to them)
                    asked = list(previous.view.asked)
                asked = asked[max(0, len(asked) - WARM_TERMS) :]
                for term, weights in asked:  # read here, not in the first searches after the swap
                    bm25_scorer.term_frequencies(view, term, dict(weights), asked=False)
                fresh = _Snapshot(searcher, view, {})
            with self._search_lock:
                replaced = self._state  # None when closed meanwhile, or a first search's (lazy) when previous is None
                version = lineage.new_version()
                if fresh is not None and replaced is None:  # closed meanwhile: nothing to install
                    fresh.searcher.close()
                    fresh = None
                self._state = fresh
                if fresh is not None:
                    if changed is not None and self._viewed == self._version:
                        lineage.record(version, self._version, changed)
                    self._viewed = version
                else:
                    self._viewed = None
                self._version = version
            if replaced is not None:  # no search can reach it now: they read _state under _search_lock
                replaced.searcher.close()

    def _open_searcher(self) -> Any:
        from whoosh import scoring

        return self._ix.searcher(weighting=scoring.BM25F(B=bm25_scorer.B, K1=bm25_scorer.K1))

    def _snapshot(self) -> _Snapshot:
        """The current snapshot, opened here on the first search (caller holds ``_search_lock``)."""
        state = self._state
        if state is None:
            searcher = self._open_searcher()
            view, _ = self._segments.view(searcher)
            state = self._state = _Snapshot(searcher, view, {})
        return state

    def _get_searcher(self) -> Any:
        """The current commit's whoosh searcher (caller holds ``_search_lock``)."""
        return self._snapshot().searcher

    def _view(self) -> bm25_scorer.IndexView:
        """The current commit's segment view (caller holds ``_search_lock``)."""
        return self._snapshot().view

    def search(self, terms: Mapping[str, float], limit: int) -> list[BM25Hit]:
        """Chunks matching any of ``terms`` (analyzer term -> query weight, 1.0 for the user's own words),
        best BM25F score first (ties in index order), at most ``limit``; the fields weighted by
        :data:`FIELD_BOOSTS` (see :mod:`kb.search.bm25_scorer`)."""
        if not terms or limit <= 0:
            return []
        with self._search_lock:
            view = self._view()
            hits = bm25_scorer.score(view, terms, FIELD_BOOSTS, limit)
            return [BM25Hit(a, o, s) for a, o, s in hits]

    def search_keys(self, terms: Mapping[str, float], limit: int) -> list[tuple[tuple[int, int], float]]:
        """:meth:`search` as ``((article_id, ord), score)`` pairs (the engine's form; no object per candidate)."""
        if not terms or limit <= 0:
            return []
        with self._search_lock:
            return bm25_scorer.score_keys(self._view(), terms, FIELD_BOOSTS, limit)

    def holds(self, term: str) -> bool:
        """Whether a live chunk holds ``term`` in a field of :data:`FIELD_BOOSTS` (the same as
        ``bool(self.search({term: 1.0}, 1))``, without scoring)."""
        with self._search_lock:
            return bm25_scorer.holds(self._view(), term, FIELD_BOOSTS)

    def articles_with_phrases(self, phrases: Iterable[tuple[str, ...]]) -> set[int]:
        """Ids of articles that contain every phrase (in order, adjacent) in the title, headings or body."""
        from whoosh import query as q

        clauses = []
        for phrase in phrases:
            fields = ("title", "headings", "body")
            if len(phrase) == 1:
                clauses.append(q.Or([q.Term(f, phrase[0]) for f in fields]))
            else:
                clauses.append(q.Or([q.Phrase(f, list(phrase)) for f in fields]))
        if not clauses:
            return set()
        with self._search_lock:
            searcher = self._get_searcher()
            matched: set[int] | None = None
            for clause in clauses:  # per phrase: an article may hold each phrase in a different chunk
                found = {int(hit["article_id"]) for hit in searcher.search(clause, limit=None)}
                matched = found if matched is None else matched & found
            return matched or set()

    def term_articles(self, terms: Iterable[str], fieldnames: Iterable[str]) -> dict[tuple[str, str], set[int]]:
        """For each ``(term, field)``, the ids of the live articles with a chunk holding ``term`` in that field
        (postings read once per commit and remembered; for the ranker's coverage features)."""
        with self._search_lock:
            view = self._view()
            found: dict[tuple[str, str], set[int]] = {}
            for fieldname in fieldnames:
                for term in terms:
                    ids, _ = bm25_scorer.term_frequencies(view, term, {fieldname: 1.0})
                    found[(term, fieldname)] = set(np.unique(view.article_ids[ids]).tolist()) - {-1}
            return found

    def term_holders(self, term: str) -> npt.NDArray[np.int64]:
        """Ids of the live articles with a chunk holding ``term`` in a field of :data:`FIELD_BOOSTS` (with
        repeats, unordered; empty when none): the articles :meth:`term_articles` gives for those fields together,
        from the postings :meth:`holds` and the search read (remembered per commit)."""
        with self._search_lock:
            view = self._view()
            ids, _ = bm25_scorer.term_frequencies(view, term, FIELD_BOOSTS)
            articles = view.article_ids[ids]
            return articles[articles >= 0]

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        """whoosh's idf of each term in the ``body`` field (0 for a term no chunk holds), from the cached postings
        (:func:`kb.search.bm25_scorer.body_idf`)."""
        with self._search_lock:
            state = self._snapshot()
            terms = list(terms)
            missing = [t for t in terms if t not in state.idf]
            for t in missing:  # remembered until the next commit
                state.idf[t] = bm25_scorer.body_idf(state.view, t)
            return {t: state.idf[t] for t in terms}

    def doc_count(self) -> int:
        """Number of live (not deleted) chunk documents."""
        with self._search_lock:
            return int(self._get_searcher().doc_count())

    def count_article(self, article_id: int) -> int:
        """Live chunk documents of ``article_id``."""
        from whoosh import query as q

        with self._search_lock:
            return len(self._get_searcher().search(q.Term("article_id", str(article_id)), limit=None))

    def article_ids(self) -> set[int]:
        """Ids of all articles with at least one live chunk."""
        with self._search_lock:
            return {int(doc["article_id"]) for doc in self._get_searcher().reader().all_stored_fields()}
