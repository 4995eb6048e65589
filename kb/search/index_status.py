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


def measure(
    gen: Generation, articles: ArticleReader, chunks: ChunkStore, outbox: Outbox, *, full: bool = True
) -> IndexStatus:
    """The :class:`IndexStatus` of the open generation ``gen`` against the database.

    ``full`` compares the article ids of the database and of the BM25 leg (reads every article id and every indexed
    chunk's stored fields, under the BM25 search lock: seconds at 10^5 chunks, so for ``kb index status``, not for
    a per-request path). Without it only counts are read (``/health``, ``/metrics``: a few COUNT queries, the
    legs' sizes and the distinct article ids of the vector leg, milliseconds at 10^5 chunks), and
    ``unindexed_articles`` stays empty; ``consistent`` then means nothing is pending, both legs hold the database's
    chunks and the vector leg holds as many articles as the database.
    """
    db_chunks = chunks.count(gen.manifest.model)
    max_seq = outbox.max_seq()
    last_seq = gen.manifest.last_seq  # read once: the applier may move it on while this runs
    pending = outbox.pending(last_seq)
    bm25_chunks = gen.bm25.doc_count()
    vector_chunks = len(gen.vectors)
    counts_agree = pending == 0 and db_chunks == bm25_chunks == vector_chunks
    if full:
        article_ids = set(articles.ids())
        indexed = gen.bm25.article_ids()
        unindexed = sorted(article_ids - indexed)
        total, indexed_count = len(article_ids), len(indexed & article_ids)
        consistent = counts_agree and not unindexed and not (indexed - article_ids)
    else:
        total, indexed_count, unindexed = articles.count(), gen.vectors.article_count(), []
        consistent = counts_agree and indexed_count == total
    return IndexStatus(
        generation=gen.manifest.generation,
        model=gen.manifest.model,
        dimension=gen.manifest.dimension,
        last_seq=last_seq,
        max_seq=max_seq,
        pending=pending,
        articles=total,
        db_chunks=db_chunks,
        bm25_chunks=bm25_chunks,
        vector_chunks=vector_chunks,
        indexed_articles=indexed_count,
        unindexed_articles=unindexed[:100],
        consistent=consistent,
    )
