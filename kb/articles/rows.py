"""An article's rows in a write: its content and its row (:func:`content_of`), the version row of each saved
state (:func:`add_version`), and the update rules applied in a session (:func:`apply_update`, used by
:class:`kb.articles.store.ArticleStore` for one article or several in one transaction)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from kb.articles.content import ArticleContent
from kb.articles.lifecycle import apply_lifecycle, check_transition
from kb.articles.outbox import enqueue
from kb.articles.proposal_scope import proposals_about, scope_of, scoped_to_target, target_id
from kb.db import AUDIT_ACTIONS
from kb.errors import ConflictError, NotFoundError
from kb.models import Article, ArticleVersion, utcnow


@dataclass(frozen=True)
class WriteResult:
    """An article after a write, and the outbox ``seq`` to wait for (None when nothing changed)."""

    article: Article
    seq: int | None


def content_of(article: Article) -> ArticleContent:
    """The authored content of a stored article."""
    return ArticleContent(
        title=article.title,
        body=article.body,
        summary=article.summary,
        kind=article.kind,
        service=article.service,
        tags=list(article.tags or []),
        error_codes=list(article.error_codes or []),
        status=article.status,
        visibility=article.visibility,
        restricted_to=list(article.restricted_to or []),
        meta=dict(article.meta or {}),
    )


def content_of_version(row: ArticleVersion) -> ArticleContent:
    """The authored content saved in a version row."""
    return ArticleContent(title=row.title, body=row.body, **row.fields)


def _columns(content: ArticleContent) -> dict[str, object]:
    return content.model_dump()


def add_version(session: Session, article: Article, actor: str) -> None:
    """Add the version row of ``article`` as it is now (its ``version``), by ``actor``."""
    fields = {k: v for k, v in _columns(content_of(article)).items() if k not in ("title", "body")}
    session.add(
        ArticleVersion(
            article_id=article.id,
            version=article.version,
            title=article.title,
            body=article.body,
            fields=fields,
            created_at=utcnow(),
            created_by=actor,
        )
    )


@dataclass(frozen=True)
class Change:
    """One update of :meth:`kb.articles.store.ArticleStore.update_together`: the article, its new content, and
    the successor when the change retires it."""

    article_id: int
    content: ArticleContent
    superseded_by: int | None = None


def lock_article(session: Session, article_id: int) -> Article:
    """The article, read under its row lock in ``session``'s transaction: a write that changes nothing comes
    first, because SQLite reads outside a write transaction until one (``SELECT ... FOR UPDATE`` is a no-op
    there), so a read first would not see a concurrent writer's commit and two writers would both make version
    N + 1 (an IntegrityError, found by session 11's outside tester); on PostgreSQL the same write takes the row
    lock. Two writers of one article thus decide one after the other.

    Raises:
        NotFoundError: no such article (or it was deleted by a writer that committed first).
    """
    touched = session.execute(update(Article).where(Article.id == article_id).values(version=Article.version))
    article = session.get(Article, article_id) if cast(CursorResult[Any], touched).rowcount else None
    if article is None:
        raise NotFoundError(f"Article {article_id} does not exist.")
    return article


def apply_update(
    session: Session,
    article_id: int,
    content: ArticleContent,
    actor: str,
    lifecycle: bool,
    superseded_by: int | None,
    review_by: dt.date | None,
    restored_from: int | None,
    expected_version: int | None = None,
) -> WriteResult:
    """:meth:`kb.articles.store.ArticleStore.update` in ``session`` (its rules and errors), the article read
    under :func:`lock_article`; with ``expected_version``, a ConflictError (409) when the article is at another
    version (it changed after the caller read it: a lost update otherwise)."""
    article = lock_article(session, article_id)
    if expected_version is not None and article.version != expected_version:
        raise ConflictError(
            f"Article {article_id} changed while this change was made (it is at version {article.version}, the "
            f"change was made from version {expected_version}); read it again and retry."
        )
    if lifecycle:
        check_transition(article.status, content.status)
    content = scoped_to_target(session, content, article_id)  # a proposal is seen by who sees its target
    lifecycle_changed = apply_lifecycle(session, article, content.status, actor, superseded_by, review_by)
    digest = content.content_hash()
    if digest == article.content_hash and not lifecycle_changed:
        return WriteResult(article, None)
    scope_before = scope_of(article)
    for key, value in _columns(content).items():
        setattr(article, key, value)
    article.content_hash = digest
    article.version += 1
    article.updated_at = utcnow()
    article.updated_by = actor
    add_version(session, article, actor)
    if restored_from is not None:
        action = (actor, "article.restore", f"article {article.id}", f"to version {restored_from}")
        session.info.setdefault(AUDIT_ACTIONS, []).append(action)
    seq = enqueue(session, article.id, "upsert")
    if scope_of(article) != scope_before and target_id(article.meta) is None:
        _follow_scope(session, article, actor)
    return WriteResult(article, seq)


def _follow_scope(session: Session, article: Article, actor: str) -> None:
    """Give every open update proposal about ``article`` its new scope (:mod:`kb.articles.proposal_scope`), each
    as a new version in ``session``'s transaction. Locked after the target, in ascending id order (as an accept
    locks them, :meth:`kb.ingest.writer.ArticleWriter.accept_proposal`)."""
    for proposal_id in proposals_about(session, article.id):
        proposal = lock_article(session, proposal_id)
        apply_update(session, proposal_id, content_of(proposal), actor, False, None, None, None)
