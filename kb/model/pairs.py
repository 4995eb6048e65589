"""Training pairs for adapting the embedding model, read from a knowledge base's own tables.

Two kinds, each ``(anchor, positive)``:

- ``section``: anchor = the article title and the chunk's heading path (``标题 / 一级 / 二级``), positive = the
  chunk's text without them. Titles and headings name a symptom or task in the words of the article; the section
  says how it shows and what to do, so the pair teaches the model which passages answer a short statement of the
  problem. Chunks with less than :data:`MIN_TEXT_CHARS` characters of text are skipped.
- ``ticket``: anchor = a ticket's title and description (the requester's words), positive = the title and summary
  (or first chunk) of an article recorded as having resolved it (``article_usage`` rows with event
  ``resolved``; the row names the ticket by ``external_id``).

Evaluation queries are never read from here; a KB holding them as tickets would leak them into training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from kb.db import Database
from kb.models import Article, ArticleUsage, Chunk, Ticket

#: Shortest chunk text, characters, that makes a ``section`` pair (shorter ones carry little to learn from).
MIN_TEXT_CHARS = 20
#: Longest text kept of either side, characters (the model sees at most its token limit anyway).
MAX_TEXT_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Pair:
    """One training pair: ``kind`` is ``section`` or ``ticket``; ``article_id`` the article of the positive."""

    kind: str
    anchor: str
    positive: str
    article_id: int


def section_pairs(database: Database) -> list[Pair]:
    """A ``section`` pair per stored chunk with enough text (see module docstring), by article id and ord."""
    with database.session() as session:
        titles = dict(session.execute(select(Article.id, Article.title)).all())
        rows = session.execute(
            select(Chunk.article_id, Chunk.ord, Chunk.heading_path, Chunk.text).order_by(Chunk.article_id, Chunk.ord)
        ).all()
    pairs = []
    for row in rows:
        text = (row.text or "").strip()
        title = titles.get(row.article_id)
        if title is None or len(text) < MIN_TEXT_CHARS:
            continue
        anchor = " / ".join([title, *(row.heading_path or [])])
        pairs.append(Pair("section", anchor[:MAX_TEXT_CHARS], text[:MAX_TEXT_CHARS], row.article_id))
    return pairs


def ticket_pairs(database: Database) -> list[Pair]:
    """A ``ticket`` pair per (ticket, article) with a ``resolved`` usage row naming that ticket's external id."""
    with database.session() as session:
        rows = session.execute(
            select(Ticket.title, Ticket.description, Article.id, Article.title, Article.summary)
            .join(ArticleUsage, ArticleUsage.ticket == Ticket.external_id)
            .join(Article, Article.id == ArticleUsage.article_id)
            .where(ArticleUsage.event == "resolved")
            .order_by(Ticket.id, Article.id)
        ).all()
        first_chunks = dict(session.execute(select(Chunk.article_id, Chunk.text).where(Chunk.ord == 0)).all())
    pairs: dict[tuple[str, int], Pair] = {}
    for t_title, t_text, aid, a_title, a_summary in rows:
        anchor = "\n".join(p for p in (t_title, t_text) if p and p.strip())
        body = a_summary.strip() if a_summary and a_summary.strip() else first_chunks.get(aid, "")
        positive = "\n".join(p for p in (a_title, body) if p)
        if anchor.strip():
            pairs.setdefault((anchor, aid), Pair("ticket", anchor[:MAX_TEXT_CHARS], positive[:MAX_TEXT_CHARS], aid))
    return list(pairs.values())


def data_hash(pairs: Sequence[Pair]) -> str:
    """SHA-256 (hex) of the pairs in order: the same KB content gives the same hash."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(json.dumps([pair.kind, pair.anchor, pair.positive], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
