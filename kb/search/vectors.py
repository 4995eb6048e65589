"""The vector leg: a faiss ``IndexIDMap2`` over ``IndexFlatIP`` of L2-normalised chunk vectors.

Exact inner-product search (equal to cosine on unit vectors); fine to about 10^6 chunks. ``approximate=True``
searches an HNSW graph over a snapshot of it instead (:mod:`kb.search.ann`; setting ``KB_VECTOR_INDEX=hnsw``).
Each vector's id encodes its chunk: ``article_id << 16 | ord`` (see :func:`vector_id`), so all chunks of one article
are removed with a single ``IDSelectorRange`` and no side table can fall out of step with the index.

faiss indexes are not safe to mutate while searched (facebookresearch/faiss#1781), but exact searches of a CPU
index may run side by side (faiss wiki, "Threads and asynchronous calls"; faiss releases the GIL while it
searches): a reader-writer lock lets concurrent requests search the flat index together, and a writer (add,
remove, save) waits for them and holds off new ones. With one plain lock, 8 concurrent ``GET /search`` spent
45% of their samples queued on it behind one faiss search at a time (py-spy of ``kb serve``, issue 14).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kb.errors import IndexUnavailableError, InvalidInputError
from kb.search.ann import HnswSnapshot

ORD_BITS = 16
MAX_CHUNKS_PER_ARTICLE = 1 << ORD_BITS


def vector_id(article_id: int, ord_: int) -> int:
    """The faiss id of chunk ``ord_`` of ``article_id``.

    Raises:
        InvalidInputError: ``ord_`` is outside ``[0, 65536)``.
    """
    if not 0 <= ord_ < MAX_CHUNKS_PER_ARTICLE:
        raise InvalidInputError(f"an article may have at most {MAX_CHUNKS_PER_ARTICLE} chunks")
    return (article_id << ORD_BITS) | ord_


def split_vector_id(vid: int) -> tuple[int, int]:
    """Inverse of :func:`vector_id`: ``(article_id, ord)``."""
    return vid >> ORD_BITS, vid & (MAX_CHUNKS_PER_ARTICLE - 1)


@dataclass(frozen=True, slots=True)
class VectorHit:
    """A chunk found by the vector leg. ``score`` is cosine similarity, clamped to [-1, 1]."""

    article_id: int
    ord: int
    score: float


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer holds off new readers, so writes never starve."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared (searches)."""
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock alone (anything that changes the index or the HNSW snapshot)."""
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


#: Threads that have set their OpenMP thread count to 1 (:func:`_one_openmp_thread`).
_SINGLE_THREADED = threading.local()


def _one_openmp_thread() -> None:
    """Run this thread's faiss calls on one OpenMP thread (once per thread).

    A single query over a flat index is memory-bound, and the server runs requests in parallel threads already.
    OpenMP's thread count is a per-thread setting (libgomp keeps ``nthreads-var`` per thread, initialised from
    the process default: one thread per core): set once in the thread that opened the index, it left every
    server worker thread searching on two OpenMP threads, whose hand-offs and spin-waits cost 15 ms wall and
    4.8 ms CPU per search of 7,726 x 512 against 1.8 ms and 0.36 ms on one thread (another process loaded the
    machine; issue 14, ``bench/results/perf-session7.md``).
    """
    if not getattr(_SINGLE_THREADED, "done", False):
        import faiss

        faiss.omp_set_num_threads(1)
        _SINGLE_THREADED.done = True


class VectorIndex:
    """Thread-safe wrapper of a faiss ID-mapped flat inner-product index.

    Args:
        dimension: vector dimension; every added vector and query must have it.
    """

    def __init__(self, dimension: int, index: Any = None) -> None:
        import faiss

        _one_openmp_thread()
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._lock = _ReadWriteLock()
        self._ann: HnswSnapshot | None = None  # built by the first approximate search

    @classmethod
    def load(cls, path: Path, dimension: int) -> VectorIndex:
        """Read an index written by :meth:`save`.

        Raises:
            IndexUnavailableError: the file cannot be read or its dimension differs.
        """
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexUnavailableError(f"Cannot read vector index {path}: {exc}") from exc
        if index.d != dimension:
            raise IndexUnavailableError(f"Vector index {path} has dimension {index.d}, expected {dimension}")
        return cls(dimension, index)

    def save(self, path: Path) -> None:
        """Write atomically (temporary file, fsync, rename). Searches wait only while the index is copied into
        memory (``faiss.serialize_index``), not while the file is written and synced."""
        import faiss

        tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")  # never two writers on one file
        with self._lock.read():  # serialising only reads the index: searches go on beside it
            data = faiss.serialize_index(self._index)
        with open(tmp, "wb") as handle:
            handle.write(data.tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add ``vectors`` ``(n, dimension)`` (L2-normalised) under ``ids`` ``(n,)`` int64.

        Raises:
            InvalidInputError: ``vectors`` is not ``(n, dimension)``.
        """
        self.replace_articles((), ids, vectors)

    def replace_articles(self, article_ids: Iterable[int], ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> int:
        """Remove every chunk vector of each of ``article_ids`` and add ``vectors`` ``(n, dimension)``
        (L2-normalised) under ``ids`` ``(n,)`` int64, under one hold of the write lock: a search sees the articles
        either all before or all after (never removed and not yet added again). Returns how many were removed.

        Raises:
            InvalidInputError: ``vectors`` is not ``(n, dimension)`` (nothing is removed then).
        """
        wanted = np.fromiter((int(a) for a in article_ids), dtype=np.int64)
        if len(ids):
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
                raise InvalidInputError(f"expected vectors of shape (n, {self.dimension}), got {vectors.shape}")
            ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(wanted) == 0 and len(ids) == 0:
            return 0
        with self._lock.write():
            removed = self._remove_locked(wanted) if len(wanted) else 0
            if len(ids):
                self._index.add_with_ids(vectors, ids)
                if self._ann is not None:
                    self._ann.on_add(ids)
            return removed

    def remove_article(self, article_id: int) -> int:
        """Remove every chunk vector of ``article_id``; returns how many were removed."""
        import faiss

        low = article_id << ORD_BITS
        selector = faiss.IDSelectorRange(low, low + MAX_CHUNKS_PER_ARTICLE)
        with self._lock.write():
            if self._ann is not None:
                ids = self._ids()
                self._ann.on_remove(ids[(ids >> ORD_BITS) == article_id])
            return int(self._index.remove_ids(selector))

    def remove_articles(self, article_ids: Iterable[int]) -> int:
        """Remove every chunk vector of each of ``article_ids`` in one pass; returns how many were removed.

        One scan of the id map for the whole batch, and no ``remove_ids`` call at all when none of them has a
        vector (a batch of new articles): ``IndexIDMap2.remove_ids`` rebuilds its reverse map, O(n), on every call,
        which made the per-article :meth:`remove_article` loop 16% of a bulk import's time at 50k chunks.
        """
        return self.replace_articles(
            article_ids, np.zeros(0, dtype=np.int64), np.zeros((0, self.dimension), np.float32)
        )

    def _remove_locked(self, wanted: NDArray[np.int64]) -> int:
        """Remove the vectors of the articles ``wanted`` (caller holds the write lock); returns how many."""
        import faiss

        ids = self._ids()
        found = ids[np.isin(ids >> ORD_BITS, wanted)]
        if len(found) == 0:
            return 0
        if self._ann is not None:
            self._ann.on_remove(found)
        return int(self._index.remove_ids(faiss.IDSelectorBatch(len(found), faiss.swig_ptr(found))))

    def article_count(self) -> int:
        """Number of distinct articles with at least one vector (one pass over the id map, no copy of vectors)."""
        with self._lock.read():
            ids = self._ids()
        return len(np.unique(ids >> ORD_BITS))

    def count_article(self, article_id: int) -> int:
        """Number of vectors stored for ``article_id``."""
        with self._lock.read():
            ids = self._ids()
        return int(np.count_nonzero((ids >> ORD_BITS) == article_id))

    def _ids(self) -> NDArray[np.int64]:
        import faiss

        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def search(self, query: NDArray[np.float32], k: int, *, approximate: bool = False) -> list[VectorHit]:
        """The ``k`` nearest chunks to ``query`` ``(dimension,)`` or ``(1, dimension)``, best first; exact, or
        from the HNSW graph when ``approximate`` (see :mod:`kb.search.ann`).

        Fewer than ``k`` hits when the index is smaller; faiss' ``-1`` padding never reaches the caller.
        """
        scores, ids = self._nearest(query, k, approximate)
        return [
            VectorHit(vid >> ORD_BITS, vid & (MAX_CHUNKS_PER_ARTICLE - 1), max(-1.0, min(1.0, score)))
            for score, vid in zip(scores.tolist(), ids.tolist(), strict=True)
            if vid >= 0
        ]

    def search_keys(
        self, query: NDArray[np.float32], k: int, *, approximate: bool = False
    ) -> list[tuple[tuple[int, int], float]]:
        """:meth:`search` as ``((article_id, ord), cosine)`` pairs, ids split and cosines clamped with numpy (the
        engine's form: no object per candidate). Same chunks, order and scores."""
        scores, ids = self._nearest(query, k, approximate)
        kept = ids >= 0
        ids, scores = ids[kept], np.clip(scores[kept], -1.0, 1.0)
        keys = zip((ids >> ORD_BITS).tolist(), (ids & (MAX_CHUNKS_PER_ARTICLE - 1)).tolist(), strict=True)
        return list(zip(keys, scores.tolist(), strict=True))

    def _nearest(
        self, query: NDArray[np.float32], k: int, approximate: bool
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """Raw ``(scores, ids)`` ``(m,)`` of the ``k`` nearest, best first (ids may hold faiss' ``-1`` padding):
        the exact search shares the lock with other searches; the HNSW one holds it alone (it may rebuild the
        snapshot and sets the graph's ``efSearch``)."""
        empty = (np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64))
        if k <= 0:
            return empty
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        _one_openmp_thread()
        with self._lock.write() if approximate else self._lock.read():
            n = int(self._index.ntotal)
            if n == 0:
                return empty
            if approximate:
                found = self._snapshot().search(q, min(k, n), self._index.reconstruct)
                return (
                    np.array([s for s, _ in found], dtype=np.float64),
                    np.array([i for _, i in found], dtype=np.int64),
                )
            found_scores, found_ids = self._index.search(q, min(k, n))
        return found_scores[0].astype(np.float64), found_ids[0].astype(np.int64)

    def _snapshot(self) -> HnswSnapshot:
        """The HNSW snapshot, (re)built when missing or too far behind the flat index (caller holds the lock)."""
        if self._ann is None or self._ann.needs_rebuild():
            n = int(self._index.ntotal)
            vectors = self._index.index.reconstruct_n(0, n) if n else np.zeros((0, self.dimension), np.float32)
            self._ann = HnswSnapshot(self._ids(), vectors)
        return self._ann
