"""One index generation: a folder with its manifest, BM25 index and vector index, opened together, and the block
tokens stored for its snippets (:mod:`kb.search.block_store`, a cache: ``blocks.sqlite3``, created when missing).

A process that has a generation open holds a shared ``flock`` on its ``open.lock`` until it closes it, so a
rebuild in another process can tell whether an old generation is still in use
(:func:`kb.search.locks.in_use`) and keeps it.

Several processes (``kb serve --workers N``) share one generation folder; one of them at a time applies changes
(under ``writer.lock``). The others follow with :meth:`Generation.catch_up`: the BM25 leg is the shared whoosh
folder itself (a new searcher reads the latest commit), and the vector leg, which each process holds in memory,
is brought up to the manifest's ``last_seq`` from the outbox rows since its own and the chunk embeddings the writer
stored in the database (no re-encoding, no re-reading of the whole vectors file).

:class:`IndexManager <kb.search.index.IndexManager>` writes generations; search reads only their two legs, through
the :class:`LiveIndex` and :class:`Legs` protocols, which say exactly that.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from kb.articles.chunks import ChunkStore
from kb.articles.outbox import Outbox
from kb.search.block_store import BLOCKS_FILE, BlockStore
from kb.search.bm25 import BM25Index
from kb.search.embedders.base import decode_vectors
from kb.search.locks import hold
from kb.search.manifest import MANIFEST_FILE, Manifest
from kb.search.term_tokens import StoredBlocks
from kb.search.vectors import VectorIndex, vector_id

VECTORS_FILE = "vectors.faiss"
BM25_FOLDER = "bm25"


@dataclass
class Generation:
    """One complete index: manifest, BM25 index and vector index, in ``path``."""

    path: Path
    manifest: Manifest
    bm25: BM25Index
    vectors: VectorIndex
    blocks: BlockStore
    _held: IO[str] | None = field(default=None, repr=False)

    @classmethod
    def create(cls, path: Path, manifest: Manifest) -> Generation:
        """An empty generation in ``path`` (replacing anything there), checkpointed at ``manifest.last_seq``."""
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        held = hold(path)
        bm25 = BM25Index.create(path / BM25_FOLDER)
        gen = cls(path, manifest, bm25, VectorIndex(manifest.dimension), BlockStore(path / BLOCKS_FILE), held)
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
        return cls(path, manifest, bm25, vectors, BlockStore(path / BLOCKS_FILE), hold(path))

    @property
    def vectors_path(self) -> Path:
        return self.path / VECTORS_FILE

    def checkpoint(self, last_seq: int) -> None:
        """Save the vectors, then record ``last_seq`` in the manifest."""
        self.vectors.save(self.vectors_path)
        self.manifest.last_seq = last_seq
        self.manifest.write(self.path / MANIFEST_FILE)

    def manifest_stat(self) -> tuple[int, int] | None:
        """``(inode, mtime ns)`` of the saved manifest (it is replaced at every checkpoint); None when missing."""
        try:
            found = os.stat(self.path / MANIFEST_FILE)
        except FileNotFoundError:
            return None
        return found.st_ino, found.st_mtime_ns

    def catch_up(self, outbox: Outbox, chunks: ChunkStore) -> list[int]:
        """Follow what another process applied to this folder since this copy's ``manifest.last_seq``: the
        vectors of every article named by the outbox rows up to the saved manifest's ``last_seq`` are replaced
        by the stored chunk embeddings of the manifest's model (none when the article is gone), the BM25
        searcher is reopened on the latest commit, and ``manifest.last_seq`` becomes the saved one.

        Idempotent (a chunk stored by a later batch is simply taken early, and taken again by the next
        catch-up). The caller serialises catch-ups and applies of this generation in the process.

        Returns:
            The ids of the articles followed (empty when nothing was newer).

        Raises:
            IndexUnavailableError: the saved manifest cannot be read.
        """
        saved = Manifest.read(self.path / MANIFEST_FILE).last_seq
        if saved <= self.manifest.last_seq:
            return []
        article_ids: list[int] = []
        seq = self.manifest.last_seq
        while seq < saved:
            rows = [row for row in outbox.after(seq, 1000) if row.seq <= saved]
            if not rows:
                break
            article_ids.extend(row.article_id for row in rows)
            seq = rows[-1].seq
        followed = list(dict.fromkeys(article_ids))
        stored = chunks.of_articles(followed)
        ids: list[int] = []
        blobs: list[bytes | None] = []
        for article_id in followed:
            for chunk in stored.get(article_id, []):
                if chunk.model == self.manifest.model and chunk.embedding is not None:
                    ids.append(vector_id(chunk.article_id, chunk.ord))
                    blobs.append(chunk.embedding)
        vectors = decode_vectors(blobs, self.manifest.dimension)  # (0, dimension) when none
        self.vectors.replace_articles(followed, np.asarray(ids, dtype=np.int64), vectors)  # one step for searches
        self.bm25.reopen()
        self.manifest.last_seq = saved
        return followed

    def close(self) -> None:
        """Close the BM25 index and the block tokens and give up this process's hold on the folder."""
        self.bm25.close()
        self.blocks.close()
        if self._held is not None:
            self._held.close()
            self._held = None


class Legs(Protocol):
    """The two legs of an index generation, as search reads them, and its manifest (the last seq applied)."""

    @property
    def manifest(self) -> Manifest: ...

    @property
    def bm25(self) -> BM25Index: ...

    @property
    def vectors(self) -> VectorIndex: ...

    @property
    def blocks(self) -> StoredBlocks: ...


class LiveIndex(Protocol):
    """What search needs from the index: the live generation's legs (:class:`kb.search.index.IndexManager`
    provides it; its ``generation`` raises :class:`~kb.errors.IndexUnavailableError` before it is opened)."""

    @property
    def generation(self) -> Legs: ...
