"""In-memory article summaries and chunk passages for search, valid for one state of the index.

Every query reads the summaries of its candidate articles (filters, successors, results) and the passages of
their best chunks (coverage, duplicates, snippets): two to four SQL round trips, ~25% of a BM25 query's time
on SQLite (``bench/profile_search.py``). Both only change when an article is written, and every write reaches
search through the outbox, applied to the BM25 index by one writer; so the cache is keyed by the index's
:attr:`kb.search.bm25.BM25Index.version`, which changes with every applied batch and with every new generation.
A query that sees a new version starts from an empty cache; entries are only added under the version they were
read for, so a slow reader can never leave older rows under a newer version.

Rows are read from the database *after* the version (the writer commits the database before it commits the
index), so a cached row is never older than the index it is used with. Bounded: past :data:`MAX_ENTRIES` rows of
a kind the cache of that kind starts again (a few MB at the default).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from kb.articles.chunks import ChunkKey, ChunkPassage, ChunkStore
from kb.articles.store import ArticleStore, ArticleSummary

#: Most rows of one kind (summaries, passages) kept for one index version.
MAX_ENTRIES = 50_000

K = TypeVar("K")
V = TypeVar("V")


class _VersionedRows(Generic[K, V]):
    """Rows by key for one version; misses read through ``load`` (one call for all missing keys)."""

    def __init__(self, load: Callable[[list[K]], dict[K, V]]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._version = -1
        self._rows: dict[K, V] = {}

    def get(self, keys: Iterable[K], version: int) -> dict[K, V]:
        """The rows of ``keys`` that exist (missing keys are absent), as of index ``version``."""
        wanted = list(dict.fromkeys(keys))
        with self._lock:
            if version != self._version:
                self._version, self._rows = version, {}
            found = {k: self._rows[k] for k in wanted if k in self._rows}
        missing = [k for k in wanted if k not in found]
        if missing:
            loaded = self._load(missing)
            found.update(loaded)
            with self._lock:
                if version == self._version:
                    if len(self._rows) + len(loaded) > MAX_ENTRIES:
                        self._rows = {}
                    self._rows.update(loaded)
        return found


class ArticleCache:
    """Summaries and passages as :class:`~kb.articles.store.ArticleStore` and
    :class:`~kb.articles.chunks.ChunkStore` give them, remembered per index version (see module docstring).
    Thread-safe.

    Args:
        store: where summaries are read on a miss.
        chunks: where passages are read on a miss.
    """

    def __init__(self, store: ArticleStore, chunks: ChunkStore) -> None:
        self._summaries: _VersionedRows[int, ArticleSummary] = _VersionedRows(store.summaries)
        self._passages: _VersionedRows[ChunkKey, ChunkPassage] = _VersionedRows(chunks.passages)

    def summaries(self, article_ids: Iterable[int], version: int) -> dict[int, ArticleSummary]:
        """Summaries of the articles that exist among ``article_ids``, as of index ``version``."""
        return self._summaries.get(article_ids, version)

    def passages(self, keys: Sequence[ChunkKey], version: int) -> dict[ChunkKey, ChunkPassage]:
        """Passages of the chunks that exist among ``keys``, as of index ``version``."""
        return self._passages.get(keys, version)
