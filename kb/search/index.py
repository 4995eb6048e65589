"""IndexManager: the only writer of the search index; applies the outbox, rebuilds, reports consistency.

Layout of ``index_dir``::

    CURRENT                  name of the live generation, replaced atomically
    writer.lock              held (flock) by the process applying changes
    gen-000001/
        manifest.json        format version, model, dimension, analyzer, chunking, last applied seq
        bm25/                whoosh index of chunks
        vectors.faiss        faiss IndexIDMap2(IndexFlatIP) of chunk vectors

Applying an outbox batch: the articles it names are re-chunked (or their stored chunks reused when the
version and model match), new chunks are encoded and stored in the database, then in the BM25 index all old
chunks of each article are deleted and the new ones added in one commit, then the same in the vector index,
which is saved, and finally the manifest records the batch's last ``seq``. Every step is idempotent, so a
crash anywhere is repaired on the next start by replaying from the manifest's ``seq``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, func, select

from kb.articles.chunking import ChunkText, chunk_article, embedding_input
from kb.errors import IndexMismatchError, IndexUnavailableError
from kb.models import Article, Chunk, OutboxEntry, utcnow
from kb.search.bm25 import BM25Index, ChunkDocument
from kb.search.vectors import VectorIndex, vector_id

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from kb.config import Settings
    from kb.db import Database
    from kb.search.embedders.base import Embedder
    from kb.search.text import TextAnalyzer

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
REBUILD_HINT = "Run `kb index rebuild` to build a new index with the current settings."


@dataclass
class Manifest:
    """What a saved index generation was built with, and how far it has applied the outbox."""

    format_version: int
    generation: int
    model: str
    dimension: int
    normalized: bool
    query_instruction: str
    analyzer: dict[str, Any]
    chunking: dict[str, int]
    last_seq: int = 0
    created_at: str = field(default_factory=lambda: utcnow().isoformat())
    updated_at: str = field(default_factory=lambda: utcnow().isoformat())

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Read ``manifest.json``.

        Raises:
            IndexUnavailableError: missing or unreadable.
        """
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise IndexUnavailableError(f"Cannot read index manifest {path}: {exc}") from exc

    def write(self, path: Path) -> None:
        """Write atomically (temporary file, fsync, rename)."""
        self.updated_at = utcnow().isoformat()
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle, ensure_ascii=False, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


@dataclass
class Generation:
    """One complete index: manifest, BM25 index and vector index, in ``path``."""

    path: Path
    manifest: Manifest
    bm25: BM25Index
    vectors: VectorIndex

    @property
    def vectors_path(self) -> Path:
        return self.path / "vectors.faiss"

    def checkpoint(self, last_seq: int) -> None:
        """Save the vectors, then record ``last_seq`` in the manifest."""
        self.vectors.save(self.vectors_path)
        self.manifest.last_seq = last_seq
        self.manifest.write(self.path / "manifest.json")

    def close(self) -> None:
        self.bm25.close()


@dataclass(frozen=True)
class IndexStatus:
    """Counts in the database and in both index legs; ``consistent`` when they agree and nothing is pending.

    ``unindexed_articles`` lists ids of articles in the database with no chunk in the BM25 index (first 100).
    """

    generation: int
    model: str
    dimension: int
    last_seq: int
    max_seq: int
    pending: int
    articles: int
    db_chunks: int
    bm25_chunks: int
    vector_chunks: int
    indexed_articles: int
    unindexed_articles: list[int]
    consistent: bool


class IndexManager:
    """Owns the live index generation; applies changes and rebuilds. One per process.

    Args:
        settings: index folder and chunking settings.
        database: the source of truth.
        analyzer: the text analyzer (index terms).
        embedder: the embedding model (passage vectors).
    """

    def __init__(self, settings: Settings, database: Database, analyzer: TextAnalyzer, embedder: Embedder) -> None:
        self.settings = settings
        self.database = database
        self.analyzer = analyzer
        self.embedder = embedder
        self.root = settings.resolved_index_dir
        self._gen: Generation | None = None
        self._write_lock = threading.RLock()

    # -- opening ---------------------------------------------------------------------------------

    def expected_manifest(self, generation: int, last_seq: int = 0) -> Manifest:
        """The manifest an index built now, with these settings, would carry."""
        return Manifest(
            format_version=FORMAT_VERSION,
            generation=generation,
            model=self.embedder.name,
            dimension=self.embedder.dimension,
            normalized=True,
            query_instruction=self.embedder.query_instruction,
            analyzer=self.analyzer.fingerprint(),
            chunking={
                "max_tokens": self.max_chunk_tokens,
                "overlap_tokens": self.settings.chunk_overlap_tokens,
            },
            last_seq=last_seq,
        )

    @property
    def max_chunk_tokens(self) -> int:
        """Upper bound of a chunk's embedding input, tokens: the setting, capped by the model's limit."""
        return min(self.settings.chunk_tokens, self.embedder.max_seq_length)

    def open(self) -> None:
        """Open the live generation, creating an empty one on first use, then apply pending changes.

        A generation that cannot be read (for example after a crash mid-commit) is rebuilt from the database.

        Raises:
            IndexMismatchError: the saved index was built with other settings (model, dimension,
                analyzer, chunking); the message names ``kb index rebuild``.
        """
        with self._write_lock:
            name = self._current_name()
            if name is None:
                self._gen = self._create_generation(1, last_seq=0)
                self._write_current(self._gen.path.name)
            else:
                try:
                    self._gen = self._load_generation(self.root / name)
                except IndexUnavailableError as exc:
                    logger.error("index generation %s is unreadable (%s); rebuilding from the database", name, exc)
                    self.rebuild()
                    return
            self._check(self._gen.manifest)
        self.apply_pending()

    def open_readonly(self) -> Generation | None:
        """Load the live generation without checking settings or applying anything (for status)."""
        name = self._current_name()
        if name is None:
            return None
        gen = self._load_generation(self.root / name)
        self._gen = gen
        return gen

    def _check(self, manifest: Manifest) -> None:
        expected = self.expected_manifest(manifest.generation)
        for key in (
            "format_version",
            "model",
            "dimension",
            "normalized",
            "query_instruction",
            "analyzer",
            "chunking",
        ):
            have, want = getattr(manifest, key), getattr(expected, key)
            if have != want:
                raise IndexMismatchError(
                    f"The index in {self.root} was built with {key}={have!r} but the settings now give "
                    f"{want!r}. {REBUILD_HINT}"
                )

    def _current_name(self) -> str | None:
        current = self.root / "CURRENT"
        if not current.exists():
            return None
        name = current.read_text(encoding="utf-8").strip()
        return name or None

    def _write_current(self, name: str) -> None:
        tmp = self.root / "CURRENT.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / "CURRENT")

    def _create_generation(self, number: int, last_seq: int) -> Generation:
        path = self.root / f"gen-{number:06d}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        manifest = self.expected_manifest(number, last_seq)
        gen = Generation(path, manifest, BM25Index.create(path / "bm25"), VectorIndex(manifest.dimension))
        gen.checkpoint(last_seq)
        return gen

    def _load_generation(self, path: Path) -> Generation:
        manifest = Manifest.read(path / "manifest.json")
        bm25 = BM25Index.open(path / "bm25")
        vectors = VectorIndex.load(path / "vectors.faiss", manifest.dimension)
        return Generation(path, manifest, bm25, vectors)

    @property
    def is_open(self) -> bool:
        """Whether a generation is loaded."""
        return self._gen is not None

    @property
    def generation(self) -> Generation:
        """The live generation.

        Raises:
            IndexUnavailableError: :meth:`open` has not been called.
        """
        if self._gen is None:
            raise IndexUnavailableError("The search index is not open yet.")
        return self._gen

    def close(self) -> None:
        """Close the live generation's files."""
        with self._write_lock:
            if self._gen is not None:
                self._gen.close()
                self._gen = None

    @contextlib.contextmanager
    def _process_lock(self) -> Iterator[None]:
        """Exclusive across processes sharing this index folder (server and CLI), and across threads."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._write_lock, open(self.root / "writer.lock", "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # -- applying changes ------------------------------------------------------------------------

    def apply_pending(self, batch_size: int = 256) -> int:
        """Apply every outbox row after the manifest's ``last_seq``, in order; returns the new ``last_seq``.

        Raises:
            IndexUnavailableError: an index write failed; nothing after the last completed batch is
                recorded as applied, so the next call retries it.
            EmbeddingModelError: the model cannot be loaded.
        """
        with self._process_lock():
            gen = self.generation
            while True:
                with self.database.session() as session:
                    rows = session.execute(
                        select(OutboxEntry.seq, OutboxEntry.article_id)
                        .where(OutboxEntry.seq > gen.manifest.last_seq)
                        .order_by(OutboxEntry.seq)
                        .limit(batch_size)
                    ).all()
                if not rows:
                    return gen.manifest.last_seq
                article_ids = list(dict.fromkeys(aid for _, aid in rows))
                self._index_articles(gen, article_ids, replace=True)
                gen.checkpoint(rows[-1][0])

    def _index_articles(self, gen: Generation, article_ids: Sequence[int], *, replace: bool) -> None:
        """Bring both legs of ``gen`` in line with the database for ``article_ids``."""
        with self.database.session() as session:
            articles = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(article_ids)))}
            stored: dict[int, list[Chunk]] = {}
            for chunk in session.scalars(
                select(Chunk).where(Chunk.article_id.in_(article_ids)).order_by(Chunk.article_id, Chunk.ord)
            ):
                stored.setdefault(chunk.article_id, []).append(chunk)
        documents: list[ChunkDocument] = []
        ids: list[int] = []
        vectors: list[NDArray[np.float32]] = []
        fresh: dict[int, list[Chunk]] = {}
        for article_id in article_ids:
            article = articles.get(article_id)
            if article is None:
                continue
            chunks = stored.get(article_id, [])
            if not self._reusable(article, chunks):
                chunks = self._chunk(article)
                fresh[article_id] = chunks
            documents.extend(self._documents(article, chunks))
        self._encode_missing([c for cs in fresh.values() for c in cs], articles)
        with self.database.session() as session:
            gone = [aid for aid in article_ids if aid not in articles]
            session.execute(delete(Chunk).where(Chunk.article_id.in_(gone + list(fresh))))
            session.add_all(c for cs in fresh.values() for c in cs)
        for article_id in article_ids:
            if article_id not in articles:
                continue
            for chunk in fresh.get(article_id) or stored.get(article_id, []):
                ids.append(vector_id(chunk.article_id, chunk.ord))
                vectors.append(np.frombuffer(chunk.embedding or b"", dtype=np.float32))
        gen.bm25.replace_articles(documents, article_ids if replace else ())
        if replace:
            for article_id in article_ids:
                gen.vectors.remove_article(article_id)
        if ids:
            gen.vectors.add(np.asarray(ids, dtype=np.int64), np.vstack(vectors))

    def _reusable(self, article: Article, chunks: list[Chunk]) -> bool:
        return bool(chunks) and all(
            c.article_version == article.version and c.model == self.embedder.name and c.embedding is not None
            for c in chunks
        )

    def _chunk(self, article: Article) -> list[Chunk]:
        pieces: list[ChunkText] = chunk_article(
            article.title,
            article.body,
            self.embedder.count_tokens,
            self.max_chunk_tokens,
            self.settings.chunk_overlap_tokens,
            summary=article.summary,
        )
        return [
            Chunk(
                article_id=article.id,
                ord=p.ord,
                article_version=article.version,
                heading_path=list(p.heading_path),
                text=p.text,
                token_count=p.token_count,
                model=self.embedder.name,
                embedding=None,
            )
            for p in pieces
        ]

    def _encode_missing(self, chunks: list[Chunk], articles: dict[int, Article]) -> None:
        if not chunks:
            return
        texts = [
            embedding_input(articles[c.article_id].title, c.heading_path, self.analyzer.normalize(c.text))
            for c in chunks
        ]
        matrix = self.embedder.encode_passages(texts)
        for chunk, row in zip(chunks, matrix, strict=True):
            chunk.embedding = row.astype(np.float32).tobytes()

    def _documents(self, article: Article, chunks: list[Chunk]) -> list[ChunkDocument]:
        title_tokens = self.analyzer.tokens(article.title)
        title = [t.text for t in title_tokens]
        tags = [t for tag in article.tags for t in self.analyzer.terms(tag)]
        article_codes = [self.analyzer.normalize(c) for c in article.error_codes]
        article_codes += [t.text for t in title_tokens if t.identifier]
        docs = []
        for chunk in chunks:
            headings = [t for h in chunk.heading_path for t in self.analyzer.terms(h)]
            body_tokens = self.analyzer.tokens(chunk.text)
            codes = [t.text for t in body_tokens if t.identifier] + article_codes
            docs.append(
                ChunkDocument(
                    article_id=article.id,
                    ord=chunk.ord,
                    title=title,
                    headings=headings,
                    body=[t.text for t in body_tokens],
                    tags=tags,
                    codes=[c.replace(" ", "_") for c in codes],
                )
            )
        return docs

    # -- rebuilding ------------------------------------------------------------------------------

    def rebuild(self, batch_size: int = 200) -> Manifest:
        """Build a complete new generation from the database beside the live one, then swap atomically.

        Stored embeddings are reused when their article version and model match. Changes written while
        the rebuild runs are applied afterwards from the outbox.

        Returns:
            The new generation's manifest.
        """
        with self._process_lock():
            with self.database.session() as session:
                start_seq = session.scalar(select(func.max(OutboxEntry.seq))) or 0
                all_ids = list(session.scalars(select(Article.id).order_by(Article.id)))
            old = self._gen
            current = self._current_name()
            number = int(current.split("-")[1]) + 1 if current else 1
            gen = self._create_generation(number, last_seq=0)
            try:
                for start in range(0, len(all_ids), batch_size):
                    self._index_articles(gen, all_ids[start : start + batch_size], replace=False)
                gen.checkpoint(start_seq)
            except BaseException:
                gen.close()
                shutil.rmtree(gen.path, ignore_errors=True)
                raise
            self._write_current(gen.path.name)
            self._gen = gen
            if old is not None:
                old.close()
            for stale in self.root.glob("gen-*"):
                if stale != gen.path:
                    shutil.rmtree(stale, ignore_errors=True)
        self.apply_pending()
        return gen.manifest

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> IndexStatus:
        """Counts in the database and both legs, and whether they agree."""
        gen = self.generation
        with self.database.session() as session:
            articles = session.scalar(select(func.count()).select_from(Article)) or 0
            article_ids = set(session.scalars(select(Article.id)))
            db_chunks = (
                session.scalar(select(func.count()).select_from(Chunk).where(Chunk.model == gen.manifest.model)) or 0
            )
            max_seq = session.scalar(select(func.max(OutboxEntry.seq))) or 0
            pending = (
                session.scalar(
                    select(func.count()).select_from(OutboxEntry).where(OutboxEntry.seq > gen.manifest.last_seq)
                )
                or 0
            )
        indexed = gen.bm25.article_ids()
        unindexed = sorted(article_ids - indexed)
        bm25_chunks = gen.bm25.doc_count()
        vector_chunks = len(gen.vectors)
        return IndexStatus(
            generation=gen.manifest.generation,
            model=gen.manifest.model,
            dimension=gen.manifest.dimension,
            last_seq=gen.manifest.last_seq,
            max_seq=max_seq,
            pending=pending,
            articles=articles,
            db_chunks=db_chunks,
            bm25_chunks=bm25_chunks,
            vector_chunks=vector_chunks,
            indexed_articles=len(indexed & article_ids),
            unindexed_articles=unindexed[:100],
            consistent=(
                pending == 0
                and not unindexed
                and not (indexed - article_ids)
                and db_chunks == bm25_chunks == vector_chunks
            ),
        )
