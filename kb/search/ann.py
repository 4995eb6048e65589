"""Approximate nearest neighbours for the vector leg: a faiss HNSW graph over a snapshot of the flat index.

The flat ``IndexIDMap2`` stays the index of record (exact, saved, mutated by the one writer); faiss HNSW cannot
remove vectors, so the graph covers a *snapshot* of it and changes since are kept beside it:

- ``stale``: ids removed (or replaced) since the snapshot; their graph entries are skipped;
- ``added``: ids added since the snapshot and still present; searched exactly (brute force over their vectors).

A search asks the graph for ``k + len(stale)`` neighbours (so skipping stale entries still leaves ``k``), adds the
exact matches among ``added`` and keeps the best ``k``. Once the changes exceed :data:`REBUILD_SHARE` of the
snapshot, the next search rebuilds it (about 1 s per 10k vectors of 512 dimensions here,
``bench/results/ann-recall.md``). Recall@10 against the flat index is measured by ``bench/ann_recall.py``.

Parameters (Malkov & Yashunin 2018, "Efficient and robust approximate nearest neighbor search using Hierarchical
Navigable Small World graphs"; faiss defaults for ``M``, and its wiki's advice for efSearch at recall ~0.99):
``M`` = :data:`HNSW_M` links per node, ``efConstruction`` = :data:`EF_CONSTRUCTION`, ``efSearch`` = the larger of
:data:`EF_SEARCH` and twice the neighbours asked for (the engine asks for 100).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

HNSW_M = 32
EF_CONSTRUCTION = 80
EF_SEARCH = 128
#: Share of the snapshot that may change (stale + added) before the next search rebuilds it.
REBUILD_SHARE = 0.1


class HnswSnapshot:
    """An HNSW graph over ``vectors`` ``(n, d)`` float32 (L2-normalised; inner product) stored under ``ids``
    ``(n,)`` int64, with the changes made since (see module docstring). Not thread-safe: the owner
    (:class:`kb.search.vectors.VectorIndex`) holds its lock around every call."""

    def __init__(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        import faiss

        self.ids = np.ascontiguousarray(ids, dtype=np.int64)
        self._graph: Any = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        self._graph.hnsw.efConstruction = EF_CONSTRUCTION
        self._graph.hnsw.efSearch = EF_SEARCH
        if len(ids):
            self._graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.stale: set[int] = set()
        self.added: set[int] = set()
        self._delta: tuple[NDArray[np.int64], NDArray[np.float32]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def drift(self) -> int:
        """Changes since the snapshot: stale plus added ids."""
        return len(self.stale) + len(self.added)

    def needs_rebuild(self) -> bool:
        """Whether the changes exceed :data:`REBUILD_SHARE` of the snapshot."""
        return self.drift > REBUILD_SHARE * max(len(self.ids), 1)

    def on_add(self, ids: NDArray[np.int64]) -> None:
        """``ids`` were added to the flat index."""
        self.added.update(int(i) for i in ids)
        self._delta = None

    def on_remove(self, ids: NDArray[np.int64]) -> None:
        """``ids`` were removed from the flat index."""
        removed = {int(i) for i in ids}
        self.stale |= removed
        self.added -= removed
        self._delta = None

    def search(self, query: NDArray[np.float32], k: int, reconstruct: Any) -> list[tuple[float, int]]:
        """The best ``k`` ``(inner product, id)`` for ``query`` ``(1, d)``, best first; ``reconstruct(id)`` gives
        the stored vector of an added id (from the flat index)."""
        found: list[tuple[float, int]] = []
        if len(self.ids):
            want = min(k + len(self.stale), len(self.ids))
            self._graph.hnsw.efSearch = max(EF_SEARCH, 2 * want)
            scores, positions = self._graph.search(query, want)
            for score, pos in zip(scores[0].tolist(), positions[0].tolist(), strict=True):
                if pos >= 0 and (vid := int(self.ids[pos])) not in self.stale:
                    found.append((float(score), vid))
        if self.added:
            ids, vectors = self._delta_vectors(reconstruct)
            exact = vectors @ query[0]
            top = np.argsort(-exact, kind="stable")[:k]
            found.extend((float(exact[i]), int(ids[i])) for i in top)
        found.sort(key=lambda hit: (-hit[0], hit[1]))
        return found[:k]

    def _delta_vectors(self, reconstruct: Any) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        if self._delta is None:
            ids = np.array(sorted(self.added), dtype=np.int64)
            vectors = np.vstack([reconstruct(int(i)) for i in ids]).astype(np.float32)
            self._delta = (ids, vectors)
        return self._delta
