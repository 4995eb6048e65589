"""In-memory article summaries and chunk passages for search, valid for one state of the index.

Every query reads the summaries of its candidate articles (filters, successors, results) and the passages of
their best chunks (coverage, duplicates, snippets): two to four SQL round trips, ~25% of a BM25 query's time
on SQLite (``bench/profile_search.py``). Both only change when an article is written, and every write reaches
search through the outbox, applied to the BM25 index by one writer; so the cache is keyed by the index's
:attr:`kb.search.bm25.BM25Index.version`, which changes with every applied batch and with every new generation.
While the database holds changes the index has not applied yet, a search reads the cache under an overlay of the
index version with those articles (:mod:`kb.search.pending`), so their rows are read again from the database and
filters never use a deleted or restricted article's previous state.
A query that sees a new version keeps the rows of the articles the commits since the cached version did not touch
and reads the others again (:mod:`kb.search.lineage`: the BM25 index records, per version, the articles whose
documents are new or gone; when it cannot tell, the cache starts empty); entries are only added under the version
they were read for, so a slow reader can never leave older rows under a newer version.

On a miss the rows are read with statements built once and executed on the session's connection
(:func:`load_summaries`, :func:`load_passages`): the same rows as :meth:`ArticleStore.summaries` and
:meth:`ChunkStore.passages`, without building an OR of key equalities per call (SQLAlchemy's clause building
was half of a passage read) or the ORM's result processing: 6.2 -> 1.4 ms for 20 passages, 5.5 -> 3.7 ms for 80
summaries (the shared articles on SQLite, one process, load average 11; ``bench/results/perf-session7.md``).

Beside them it keeps values derived from the rows of one version (:meth:`ArticleCache.derived`), such as which
articles a class of viewers may see (:mod:`kb.search.visible_terms`): computed once per version, not per query.

Rows are read from the database *after* the version (the writer commits the database before it commits the
index), so a cached row is never older than the index it is used with; a row kept across a commit is of an article
whose documents that commit left as they were (every change of an article re-indexes all its chunks). Bounded:
past :data:`MAX_ENTRIES` rows of a kind the cache of that kind starts again (a few MB at the default).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, bindparam, or_, select

from kb.articles.chunks import ChunkKey, ChunkPassage, ChunkStore
from kb.articles.filters import ArticleSummary
from kb.articles.store import ArticleStore
from kb.db import Database
from kb.models import Article, Chunk
from kb.search import lineage

#: Most rows of one kind (summaries, passages) kept for one index version.
MAX_ENTRIES = 50_000

K = TypeVar("K")
V = TypeVar("V")


class _VersionedRows(Generic[K, V]):
    """Rows by key for one version; misses read through ``load`` (one call for all missing keys). At a new version
    the rows of the articles that did not change since the previous one are kept (:mod:`kb.search.lineage`; all
    are dropped when it cannot tell, or without ``article``, which gives a key's article id)."""

    def __init__(self, load: Callable[[list[K]], dict[K, V]], article: Callable[[K], int] | None = None) -> None:
        self._load = load
        self._article = article
        self._lock = threading.Lock()
        self._version = -1
        self._rows: dict[K, V] = {}

    def get(self, keys: Iterable[K], version: int) -> dict[K, V]:
        """The rows of ``keys`` that exist (missing keys are absent), as of index ``version``."""
        wanted = list(dict.fromkeys(keys))
        with self._lock:
            if version != self._version:
                article = self._article
                known = bool(self._rows) and article is not None
                changed = lineage.changed_between(self._version, version) if known else None
                if changed is None or article is None:
                    self._rows = {}
                elif changed:
                    self._rows = {k: v for k, v in self._rows.items() if article(k) not in changed}
                self._version = version
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


class _VersionedMemo:
    """Values by key for the :data:`MEMO_VERSIONS` most recently asked versions, each computed once (outside the
    lock; two threads may both compute a value the first time, and the values are equal). Several versions, not one:
    an overlay's values are derived from its base version's (:mod:`kb.search.pending`), and searches of the base and
    of the overlay run side by side."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: OrderedDict[int, dict[Hashable, Any]] = OrderedDict()

    def get(self, key: Hashable, version: int, compute: Callable[[], V]) -> V:
        with self._lock:
            values = self._versions.get(version)
            if values is None:
                values = self._versions[version] = {}
                while len(self._versions) > MEMO_VERSIONS:
                    self._versions.popitem(last=False)
            else:
                self._versions.move_to_end(version)
            if key in values:
                value: V = values[key]
                return value
        value = compute()
        with self._lock:
            if len(values) < MAX_DERIVED:
                values[key] = value
        return value


#: Most derived values (:meth:`ArticleCache.derived`) kept for one index version.
MAX_DERIVED = 1_000
#: Versions whose derived values are kept (the newest index version, its overlays, a search still on the previous).
MEMO_VERSIONS = 4

#: The visibility of every article: ``(id, visibility, restricted_to)``.
_VISIBILITY = select(Article.id, Article.visibility, Article.restricted_to, Article.status)

#: The summaries of a list of article ids (expanding ``IN``, compiled once by SQLAlchemy's statement cache).
_SUMMARIES = select(*(getattr(Article, name) for name in ArticleSummary.__dataclass_fields__)).where(
    Article.id.in_(bindparam("ids", expanding=True))
)


@functools.lru_cache(maxsize=128)
def _passages_statement(n: int) -> Select[int, int, str, list[str]]:
    """The passages of ``n`` chunk keys: an OR of ``n`` primary-key equalities on bound parameters ``a0, o0, ...``
    (SQLite plans ``(article_id, ord) IN (VALUES ...)`` as a full scan; see :meth:`ChunkStore.passages`)."""
    keys = (and_(Chunk.article_id == bindparam(f"a{i}"), Chunk.ord == bindparam(f"o{i}")) for i in range(n))
    return select(Chunk.article_id, Chunk.ord, Chunk.text, Chunk.heading_path).where(or_(*keys))


def load_summaries(database: Database, article_ids: Sequence[int]) -> dict[int, ArticleSummary]:
    """The rows :meth:`ArticleStore.summaries` gives for ``article_ids`` (missing ids are absent), in one statement
    on the read session's connection (the standby when it may serve, see :mod:`kb.db`)."""
    if not article_ids:
        return {}
    with database.read_session() as session:
        rows = session.connection().execute(_SUMMARIES, {"ids": list(set(article_ids))}).all()
    return {row[0]: ArticleSummary(*row) for row in rows}


def load_visibility(database: Database) -> list[tuple[int, str, tuple[str, ...], str]]:
    """Every article's ``(id, visibility, restricted_to, status)`` (what :func:`kb.identity.scopes.article_visible`
    and the editors-only rule of unpublished articles read), in one statement on the read session's connection."""
    with database.read_session() as session:
        rows = session.connection().execute(_VISIBILITY).all()
    return [(int(row[0]), str(row[1]), tuple(row[2] or ()), str(row[3])) for row in rows]


def load_passages(database: Database, keys: Sequence[ChunkKey]) -> dict[ChunkKey, ChunkPassage]:
    """The rows :meth:`ChunkStore.passages` gives for ``keys`` (missing keys are absent): one statement per batch
    of at most 128 keys, each statement built once per batch size."""
    found: dict[ChunkKey, ChunkPassage] = {}
    wanted = list(dict.fromkeys(keys))
    with database.read_session() as session:
        connection = session.connection()
        for start in range(0, len(wanted), 128):
            batch = wanted[start : start + 128]
            params: dict[str, int] = {}
            for i, (article_id, ord_) in enumerate(batch):
                params[f"a{i}"], params[f"o{i}"] = article_id, ord_
            for row in connection.execute(_passages_statement(len(batch)), params):
                found[(row[0], row[1])] = ChunkPassage(row[0], row[2], list(row[3] or []))
    return found


def _same(article_id: int) -> int:
    return article_id


def _first(key: ChunkKey) -> int:
    return key[0]


class ArticleCache:
    """Summaries and passages as :class:`~kb.articles.store.ArticleStore` and
    :class:`~kb.articles.chunks.ChunkStore` give them, remembered per index version (see module docstring).
    Thread-safe.

    Args:
        store: its database is where summaries are read on a miss (the rows of its ``summaries``).
        chunks: its database is where passages are read on a miss (the rows of its ``passages``).
    """

    def __init__(self, store: ArticleStore, chunks: ChunkStore) -> None:
        self._summaries: _VersionedRows[int, ArticleSummary] = _VersionedRows(
            functools.partial(load_summaries, store.database), _same
        )
        self._passages: _VersionedRows[ChunkKey, ChunkPassage] = _VersionedRows(
            functools.partial(load_passages, chunks.database), _first
        )
        self._database = store.database
        self._derived = _VersionedMemo()

    def summaries(self, article_ids: Iterable[int], version: int) -> dict[int, ArticleSummary]:
        """Summaries of the articles that exist among ``article_ids``, as of index ``version``."""
        return self._summaries.get(article_ids, version)

    def passages(self, keys: Sequence[ChunkKey], version: int) -> dict[ChunkKey, ChunkPassage]:
        """Passages of the chunks that exist among ``keys``, as of index ``version``."""
        return self._passages.get(keys, version)

    def visibility(self, version: int) -> list[tuple[int, str, tuple[str, ...], str]]:
        """Every article's ``(id, visibility, restricted_to, status)`` (:func:`load_visibility`), as of index
        ``version`` (read once per version)."""
        return self.derived(("visibility",), version, functools.partial(load_visibility, self._database))

    def derived(self, key: Hashable, version: int, compute: Callable[[], V]) -> V:
        """The value ``compute()`` gives for ``key`` as of index ``version``: computed on the first call for this
        version (``compute`` must read only what the version determines, e.g. :meth:`visibility`), remembered until
        the version changes (at most :data:`MAX_DERIVED` values per version)."""
        return self._derived.get(key, version, compute)
