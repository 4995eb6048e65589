"""One index generation: a folder with its manifest, BM25 index and vector index, opened together.

A process that has a generation open holds a shared ``flock`` on its ``open.lock`` until it closes it, so a
rebuild in another process can tell whether an old generation is still in use
(:func:`kb.search.locks.in_use`) and keeps it.

:class:`IndexManager <kb.search.index.IndexManager>` writes generations; search reads only their two legs, through
the :class:`LiveIndex` and :class:`Legs` protocols, which say exactly that.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from kb.search.bm25 import BM25Index
from kb.search.locks import hold
from kb.search.manifest import MANIFEST_FILE, Manifest
from kb.search.vectors import VectorIndex

VECTORS_FILE = "vectors.faiss"
BM25_FOLDER = "bm25"


@dataclass
class Generation:
    """One complete index: manifest, BM25 index and vector index, in ``path``."""

    path: Path
    manifest: Manifest
    bm25: BM25Index
    vectors: VectorIndex
    _held: IO[str] | None = field(default=None, repr=False)

    @classmethod
    def create(cls, path: Path, manifest: Manifest) -> Generation:
        """An empty generation in ``path`` (replacing anything there), checkpointed at ``manifest.last_seq``."""
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        held = hold(path)
        gen = cls(path, manifest, BM25Index.create(path / BM25_FOLDER), VectorIndex(manifest.dimension), held)
        gen.checkpoint(manifest.last_seq)
        return gen

    @classmethod
    def load(cls, path: Path) -> Generation:
        """Open the generation saved in ``path``.

        Raises:
            IndexUnavailableError: a file is missing or unreadable.
        """
        manifest = Manifest.read(path / MANIFEST_FILE)
        bm25 = BM25Index.open(path / BM25_FOLDER)
        vectors = VectorIndex.load(path / VECTORS_FILE, manifest.dimension)
        return cls(path, manifest, bm25, vectors, hold(path))

    @property
    def vectors_path(self) -> Path:
        return self.path / VECTORS_FILE

    def checkpoint(self, last_seq: int) -> None:
        """Save the vectors, then record ``last_seq`` in the manifest."""
        self.vectors.save(self.vectors_path)
        self.manifest.last_seq = last_seq
        self.manifest.write(self.path / MANIFEST_FILE)

    def close(self) -> None:
        """Close the BM25 index and give up this process's hold on the folder."""
        self.bm25.close()
        if self._held is not None:
            self._held.close()
            self._held = None


class Legs(Protocol):
    """The two legs of an index generation, as search reads them."""

    @property
    def bm25(self) -> BM25Index: ...

    @property
    def vectors(self) -> VectorIndex: ...


class LiveIndex(Protocol):
    """What search needs from the index: the live generation's legs (:class:`kb.search.index.IndexManager`
    provides it; its ``generation`` raises :class:`~kb.errors.IndexUnavailableError` before it is opened)."""

    @property
    def generation(self) -> Legs: ...
