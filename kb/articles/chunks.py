"""ChunkStore: the ``chunks`` table, the stored form of what the search index holds.

A chunk row is one piece of an article as chunked for one embedding model (see :mod:`kb.articles.chunking` and
:class:`kb.models.Chunk`): its text, heading path, token count and embedding bytes. The index manager is its only
writer; search reads chunk texts from it to build snippets and to tell near-duplicates apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select

from kb.db import Database
from kb.models import Chunk

#: A chunk's primary key: ``(article_id, ord)``.
ChunkKey = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ChunkPassage:
    """What a search result shows of a chunk: its text and heading path (never the embedding)."""

    article_id: int
    text: str
    heading_path: list[str]


class ChunkStore:
    """Reads and replaces chunk rows. Thread-safe (a session per call).

    Args:
        database: the source of truth.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def passages(self, keys: Sequence[ChunkKey]) -> dict[ChunkKey, ChunkPassage]:
        """Text and heading path of the chunks with these keys, in one query; missing keys are absent."""
        if not keys:
            return {}
        # OR of primary-key equalities: SQLite plans `(article_id, ord) IN (VALUES ...)` as a full table scan
        # (19 ms at 36k chunks, against 0.3 ms by key).
        by_key = or_(*(and_(Chunk.article_id == a, Chunk.ord == o) for a, o in keys))
        with self.database.read_session() as session:  # search's read: the standby may serve it (kb.db)
            rows = session.execute(
                select(Chunk.article_id, Chunk.ord, Chunk.text, Chunk.heading_path).where(by_key)
            ).all()
        return {(r.article_id, r.ord): ChunkPassage(r.article_id, r.text, list(r.heading_path or [])) for r in rows}

    def of_article(self, article_id: int) -> list[Chunk]:
        """The stored chunks of one article (with embeddings), by ``ord``."""
        with self.database.session() as session:
            return list(session.scalars(select(Chunk).where(Chunk.article_id == article_id).order_by(Chunk.ord)))

    def of_articles(self, article_ids: Iterable[int]) -> dict[int, list[Chunk]]:
        """The stored chunks (with embeddings) of each article that has any, by ``ord``."""
        ids = list(article_ids)
        stored: dict[int, list[Chunk]] = {}
        with self.database.session() as session:
            for chunk in session.scalars(
                select(Chunk).where(Chunk.article_id.in_(ids)).order_by(Chunk.article_id, Chunk.ord)
            ):
                stored.setdefault(chunk.article_id, []).append(chunk)
        return stored

    def replace(self, article_ids: Iterable[int], chunks: Iterable[Chunk]) -> None:
        """In one transaction: delete every chunk of ``article_ids``, then add ``chunks``."""
        with self.database.session() as session:
            session.execute(delete(Chunk).where(Chunk.article_id.in_(list(article_ids))))
            session.add_all(chunks)

    def count(self, model: str) -> int:
        """Number of chunks stored for embedding model ``model``."""
        with self.database.session() as session:
            return session.scalar(select(func.count()).select_from(Chunk).where(Chunk.model == model)) or 0
