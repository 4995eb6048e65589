"""Training pairs for adapting the embedding model, read from a knowledge base's own tables.

Two kinds, each ``(anchor, positive)``:

- ``section``: anchor = the article title and the chunk's heading path (``标题 / 一级 / 二级``), positive = the
  chunk's text without them. Titles and headings name a symptom or task in the words of the article; the section
  says how it shows and what to do, so the pair teaches the model which passages answer a short statement of the
  problem. Chunks with less than :data:`MIN_TEXT_CHARS` characters of text are skipped.
- ``ticket``: anchor = a ticket's title and description (the requester's words), positive = the title and summary
  (or first chunk) of an article recorded as having resolved it (``article_usage`` rows with event
  ``resolved``; the row names the ticket by ``external_id``).
- ``symptom``: the articles' own user-voiced text as anchor, the passages that answer it as positive, in the form
  the index encodes them (:func:`kb.articles.chunking.embedding_input`: title / heading path, newline, text):
  the text of a chunk under a symptom heading (:data:`SYMPTOM_HEADING`: 症状, 现象, 问题描述, 报错 ...) paired
  with each chunk of the same article under a cause / fix heading (:data:`FIX_HEADING`), or with the chunk after
  it when the article has none; and an article's summary (front matter ``summary`` / ``description``, which
  troubleshooting articles write as the problem: "排查……时出现……错误的问题") paired with its first
  :data:`SUMMARY_POSITIVES` body chunks. These teach "how it shows" -> "what fixes it" without the title as a
  shortcut (the anchor does not contain it).

Evaluation queries are never read from here; a KB holding them as tickets would leak them into training.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from kb.articles.chunking import embedding_input
from kb.db import Database
from kb.models import Article, ArticleUsage, Chunk, Ticket

#: Shortest chunk text, characters, that makes a ``section`` pair (shorter ones carry little to learn from).
MIN_TEXT_CHARS = 20
#: Longest text kept of either side, characters (the model sees at most its token limit anyway).
MAX_TEXT_CHARS = 1000
#: A heading that introduces how a problem shows (zh and en; matched anywhere in a heading of the path).
SYMPTOM_HEADING = re.compile(r"症状|现象|问题描述|表现|报错|错误消息|错误信息|symptom", re.IGNORECASE)
#: A heading that introduces a cause or a fix.
FIX_HEADING = re.compile(r"原因|解决|处理|排查|规避|修复|方案|办法|resolution|cause|workaround|\bfix", re.IGNORECASE)
#: Body chunks paired with an article's summary, in document order.
SUMMARY_POSITIVES = 3
#: Fix chunks paired with one symptom chunk, in document order.
FIX_POSITIVES = 3


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


def symptom_pairs(database: Database) -> list[Pair]:
    """``symptom`` pairs (see module docstring), by article id and chunk order; no pair repeats."""
    with database.session() as session:
        articles = {
            row.id: (row.title, row.summary)
            for row in session.execute(select(Article.id, Article.title, Article.summary))
        }
        rows = session.execute(
            select(Chunk.article_id, Chunk.ord, Chunk.heading_path, Chunk.text).order_by(Chunk.article_id, Chunk.ord)
        ).all()
    by_article: dict[int, list[tuple[tuple[str, ...], str]]] = {}
    for row in rows:
        if row.article_id in articles:
            by_article.setdefault(row.article_id, []).append((tuple(row.heading_path or ()), (row.text or "").strip()))
    pairs: dict[tuple[str, str], Pair] = {}

    def add(anchor: str, title: str, heading: tuple[str, ...], text: str, aid: int) -> None:
        positive = embedding_input(title, heading, text)[:MAX_TEXT_CHARS]
        if len(anchor) >= MIN_TEXT_CHARS and anchor != text:
            pairs.setdefault((anchor, positive), Pair("symptom", anchor[:MAX_TEXT_CHARS], positive, aid))

    for aid, chunks in by_article.items():
        title, summary = articles[aid]
        body = [(h, t) for h, t in chunks if len(t) >= MIN_TEXT_CHARS]
        summary = (summary or "").strip()
        for heading, text in [c for c in body if c[1] != summary][:SUMMARY_POSITIVES] if summary else []:
            add(summary, title, heading, text, aid)
        fixes = [c for c in body if any(FIX_HEADING.search(h) for h in c[0])]
        for i, (heading, text) in enumerate(body):
            if not heading or not SYMPTOM_HEADING.search(heading[-1]):
                continue
            targets = [c for c in fixes if c[1] != text][:FIX_POSITIVES] or body[i + 1 : i + 2]
            for fix_heading, fix_text in targets:
                add(text, title, fix_heading, fix_text, aid)
    return list(pairs.values())


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


def collection_of(database: Database) -> dict[int, str]:
    """``{article id: collection}`` of every article (to leave a collection out of training)."""
    with database.session() as session:
        return {int(aid): str(col) for aid, col in session.execute(select(Article.id, Article.collection))}


def data_hash(pairs: Sequence[Pair]) -> str:
    """SHA-256 (hex) of the pairs in order: the same KB content gives the same hash."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update(json.dumps([pair.kind, pair.anchor, pair.positive], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
