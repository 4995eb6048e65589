"""ArticleReader: whole articles in bulk, for the search index (which chunks, encodes and indexes them).

:class:`kb.articles.store.ArticleStore` reads one article or light summaries; the index manager needs every
column of a batch of articles at once, and every article id for a rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from kb.db import Database
from kb.models import Article


class ArticleReader:
    """Bulk reads of articles. Thread-safe (a session per call).

    Args:
        database: the source of truth.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def ids(self) -> list[int]:
        """The id of every article (any status), ascending."""
        with self.database.session() as session:
            return list(session.scalars(select(Article.id).order_by(Article.id)))

    def count(self) -> int:
        """Number of articles (any status), one COUNT query."""
        with self.database.session() as session:
            return int(session.scalar(select(func.count()).select_from(Article)) or 0)

    def by_ids(self, article_ids: Iterable[int]) -> dict[int, Article]:
        """The articles with these ids; missing (deleted) ids are absent."""
        ids = list(article_ids)
        with self.database.session() as session:
            return {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))}
