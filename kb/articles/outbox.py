"""Outbox: reads of the ``outbox`` table, the ordered feed of article changes the search index applies.

Rows are written by :class:`kb.articles.store.ArticleStore` in the same transaction as the change itself; ``seq``
orders them (see :class:`kb.models.OutboxEntry`). The index manager reads them here and records in its manifest the
last ``seq`` it has applied.

Commit order = ``seq`` order. On PostgreSQL, sequence values are handed out before commit, so without care a
transaction holding seq N could commit after one holding N+1 had been applied, and N would be skipped for ever.
:func:`enqueue` therefore takes a transaction-scoped advisory lock (``pg_advisory_xact_lock``, released at commit or
rollback) before it draws the seq: writers of the outbox are serialised from that point to their commit, so a
smaller seq is always committed (or rolled back: a permanent gap, harmless) before a larger one becomes visible.
The lock is taken as late as possible (the outbox row is the last write of an article change). SQLite serialises
writers itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from kb.db import Database, mark_outbox_write
from kb.models import OutboxEntry, utcnow

#: Key of the advisory lock serialising outbox writers on PostgreSQL (any constant; "kb outbox" in ASCII hex).
OUTBOX_LOCK_KEY = 0x6B62_6F75_7462


def enqueue(session: Session, article_id: int, op: str) -> int:
    """Add the outbox row of a change of ``article_id`` (``op`` upsert or delete) in ``session``'s transaction and
    return its ``seq``; on PostgreSQL first takes the outbox lock, held until the transaction ends (module
    docstring), so ``seq`` order is commit order."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_LOCK_KEY})
    mark_outbox_write(session)
    entry = OutboxEntry(article_id=article_id, op=op, created_at=utcnow())
    session.add(entry)
    session.flush()
    return entry.seq


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
