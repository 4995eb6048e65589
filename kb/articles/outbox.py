"""Outbox: reads of the ``outbox`` table, the ordered feed of article changes the search index applies.

Rows are written by :class:`kb.articles.store.ArticleStore` in the same transaction as the change itself; ``seq``
orders them (see :class:`kb.models.OutboxEntry`). The index manager reads them here and records in its manifest the
last ``seq`` it has applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from kb.db import Database
from kb.models import OutboxEntry


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One change to apply: ``seq`` (1, 2, ...; increasing) names a change of article ``article_id``."""

    seq: int
    article_id: int


class Outbox:
    """Reads the outbox. Thread-safe (a session per call).

    Args:
        database: the source of truth.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def after(self, seq: int, limit: int) -> list[OutboxRow]:
        """The first ``limit`` rows with a ``seq`` above ``seq``, in ``seq`` order."""
        with self.database.session() as session:
            rows = session.execute(
                select(OutboxEntry.seq, OutboxEntry.article_id)
                .where(OutboxEntry.seq > seq)
                .order_by(OutboxEntry.seq)
                .limit(limit)
            ).all()
        return [OutboxRow(r.seq, r.article_id) for r in rows]

    def max_seq(self) -> int:
        """The highest ``seq`` written so far; 0 for an empty outbox."""
        with self.database.session() as session:
            return session.scalar(select(func.max(OutboxEntry.seq))) or 0

    def pending(self, after_seq: int) -> int:
        """Number of rows with a ``seq`` above ``after_seq`` (not applied yet by an index at ``after_seq``)."""
        with self.database.session() as session:
            return session.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.seq > after_seq)) or 0
