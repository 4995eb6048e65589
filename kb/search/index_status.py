"""What ``kb index status`` reports: counts in the database and in both legs of the live index generation."""

from __future__ import annotations

from dataclasses import dataclass


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
