"""What ``kb index status`` reports: counts in the database and in both legs of the live index generation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kb.articles.chunks import ChunkStore
    from kb.articles.outbox import Outbox
    from kb.articles.reader import ArticleReader
    from kb.search.generation import Generation


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


def measure(gen: Generation, articles: ArticleReader, chunks: ChunkStore, outbox: Outbox) -> IndexStatus:
    """The :class:`IndexStatus` of the open generation ``gen`` against the database (reads every article id and
    every indexed chunk's stored fields: seconds at 10^5 chunks, so not for a per-request path)."""
    article_ids = set(articles.ids())
    db_chunks = chunks.count(gen.manifest.model)
    max_seq = outbox.max_seq()
    pending = outbox.pending(gen.manifest.last_seq)
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
        articles=len(article_ids),
        db_chunks=db_chunks,
        bm25_chunks=bm25_chunks,
        vector_chunks=vector_chunks,
        indexed_articles=len(indexed & article_ids),
        unindexed_articles=unindexed[:100],
        consistent=(
            pending == 0 and not unindexed and not (indexed - article_ids) and db_chunks == bm25_chunks == vector_chunks
        ),
    )
