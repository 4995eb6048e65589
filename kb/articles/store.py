"""Article storage: every write stores the article, a version row and an outbox row in one transaction.

The outbox row is what makes the change reach the search index (see :mod:`kb.search.index`); because it
is written in the same transaction, a change is either wholly saved and queued, or not saved at all.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from kb.articles.content import ArticleContent
from kb.articles.filters import ArticleFilter, ArticleSummary
from kb.articles.lifecycle import default_review_by
from kb.articles.outbox import enqueue
from kb.articles.proposal_scope import scoped_to_target, target_id
from kb.articles.rows import (
    Change,
    WriteResult,
    add_version,
    apply_update,
    content_of,
    content_of_version,
    lock_article,
)
from kb.db import AUDIT_ACTIONS, Database
from kb.errors import ConflictError, NotFoundError
from kb.identity.scopes import article_clause, restricted_rows_need_check
from kb.models import Article, ArticleVersion, utcnow

logger = logging.getLogger(__name__)

ImportOutcome = Literal["created", "updated", "unchanged"]


def _scoped(session: Session, content: ArticleContent) -> ArticleContent:
    """``content`` of a new article as stored (:func:`kb.articles.proposal_scope.scoped_to_target`), the target of a
    proposal read under its row lock: a concurrent change of the target's scope comes before or after this whole
    insert, and one after it finds the new proposal to follow."""
    target = target_id(content.meta)
    if target is not None:
        try:
            lock_article(session, target)
        except NotFoundError:
            return content
    return scoped_to_target(session, content)


class ArticleStore:
    """Reads and writes articles in the database. Thread-safe (a session per call)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- reads -----------------------------------------------------------------------------------

    def get(self, article_id: int) -> Article:
        """The article with ``article_id``.

        Raises:
            NotFoundError: no such article.
        """
        with self.database.session() as session:
            article = session.get(Article, article_id)
            if article is None:
                raise NotFoundError(f"Article {article_id} does not exist.")
            return article

    def by_source_paths(self, collection: str, source_paths: Iterable[str]) -> dict[str, Article]:
        """The articles imported from ``collection`` at any of ``source_paths`` (relative to its root), by path;
        paths no article came from are absent. Visibility is the caller's to check."""
        paths = list(set(source_paths))
        if not paths:
            return {}
        with self.database.session() as session:
            rows = session.scalars(
                select(Article).where(Article.collection == collection, Article.source_path.in_(paths))
            )
            return {a.source_path: a for a in rows if a.source_path is not None}

    def summaries(self, article_ids: Iterable[int]) -> dict[int, ArticleSummary]:
        """Light rows (no body) of the given articles, for ranking and filtering; missing ids are absent."""
        ids = list(set(article_ids))
        if not ids:
            return {}
        columns = [getattr(Article, name) for name in ArticleSummary.__dataclass_fields__]
        with self.database.read_session() as session:  # search's read: the standby may serve it (kb.db)
            rows = session.execute(select(*columns).where(Article.id.in_(ids))).all()
        return {row.id: ArticleSummary(*row) for row in rows}

    def list_articles(self, flt: ArticleFilter, offset: int = 0, limit: int = 50) -> tuple[list[Article], int]:
        """A page of articles matching ``flt``, newest first, and the total count. Paged in SQL; the ``body``
        column is never loaded (deferred: reading ``.body`` of a listed article raises). Tag filters (JSON
        lists) and restricted articles the viewer may not read wholesale (:mod:`kb.identity.scopes`) are checked in
        Python, over the rows the other filters leave."""
        query = select(Article).options(defer(Article.body, raiseload=True))
        counted = select(func.count()).select_from(Article)
        for column, values in (
            (Article.status, flt.statuses),
            (Article.kind, flt.kinds),
            (Article.service, flt.services),
        ):
            if values:
                query, counted = query.where(column.in_(values)), counted.where(column.in_(values))
        visible = article_clause(flt.viewer)
        query, counted = query.where(visible), counted.where(visible)
        query = query.order_by(Article.id.desc())
        with self.database.session() as session:
            if not flt.tags and not restricted_rows_need_check(flt.viewer):
                total = session.scalar(counted) or 0
                return list(session.scalars(query.offset(offset).limit(limit))), total
            rows = [a for a in session.scalars(query) if flt.matches(a)]
        return rows[offset : offset + limit], len(rows)

    def count(self) -> int:
        """Number of articles in any status."""
        with self.database.session() as session:
            return session.scalar(select(func.count()).select_from(Article)) or 0

    # -- writes ----------------------------------------------------------------------------------

    def create(
        self,
        content: ArticleContent,
        actor: str,
        *,
        source: str = "api",
        collection: str | None = None,
        source_path: str | None = None,
    ) -> WriteResult:
        """Store a new article (version 1). Created as published (not by an import), it is audited as
        ``article.publish`` in the same transaction (:data:`kb.db.AUDIT_ACTIONS`), with ``actor`` as reviewer.

        Raises:
            ConflictError: an article with the same ``collection`` and ``source_path`` exists.
        """
        now = utcnow()
        try:
            with self.database.session() as session:
                content = _scoped(session, content)
                article = Article(
                    **content.model_dump(),
                    source=source,
                    collection=collection,
                    source_path=source_path,
                    content_hash=content.content_hash(),
                    version=1,
                    created_at=now,
                    updated_at=now,
                    created_by=actor,
                    updated_by=actor,
                )
                if content.status == "published":  # published at creation: the author is its reviewer (as on a move)
                    article.published_at = now
                    article.review_by = default_review_by(now.date())
                    article.reviewer = actor
                session.add(article)
                session.flush()
                if content.status == "published" and collection is None:  # imports are audited per batch
                    action = (actor, "article.publish", f"article {article.id} {article.title}", "created published")
                    session.info.setdefault(AUDIT_ACTIONS, []).append(action)
                add_version(session, article, actor)
                seq = enqueue(session, article.id, "upsert")
        except IntegrityError as exc:
            raise ConflictError(f"An article from {collection}/{source_path} already exists.") from exc
        return WriteResult(article, seq)

    def update(
        self,
        article_id: int,
        content: ArticleContent,
        actor: str,
        *,
        lifecycle: bool = True,
        superseded_by: int | None = None,
        review_by: dt.date | None = None,
        restored_from: int | None = None,
        expected_version: int | None = None,
    ) -> WriteResult:
        """Replace an article's content; a new version when anything changed, else a no-op. With
        ``expected_version``, refused (ConflictError, 409) when the article is at another version. With
        ``restored_from`` (a version number) the new version is audited as ``article.restore`` in the same
        transaction (:data:`kb.db.AUDIT_ACTIONS`).

        A change of ``content.status`` follows :mod:`kb.articles.lifecycle` (unless ``lifecycle`` is False, for
        imports):
        publishing records ``actor`` as reviewer and the review-by date (``review_by`` or a year ahead);
        retiring records ``superseded_by``.

        Raises:
            NotFoundError: no such article.
            TransitionError: the status change is not allowed (409, with the allowed statuses).
            InvalidInputError: ``superseded_by`` is the article itself or does not exist.
        """
        with self.database.session() as session:
            return apply_update(
                session,
                article_id,
                content,
                actor,
                lifecycle,
                superseded_by,
                review_by,
                restored_from,
                expected_version,
            )

    def update_together(
        self, plan: Callable[[Callable[[int], Article]], Sequence[Change]], actor: str
    ) -> list[WriteResult]:
        """Several updates in one transaction: all are saved and queued, or none (a write of two articles, e.g.
        accepting an update proposal). ``plan`` is given ``locked(article_id)``, which reads an article under a
        row lock (taken by a write that changes nothing: the writer lock on SQLite), decides from what it read,
        and names the changes; each is applied as :meth:`update` does. Deciding under the lock makes two
        concurrent callers decide one after the other (found by session 9: two concurrent accepts of one
        proposal could both apply it).

        Raises:
            NotFoundError: ``locked`` or a change names no article. Whatever ``plan`` or :meth:`update` raise;
                nothing is then changed.
        """
        with self.database.session() as session:

            def locked(article_id: int) -> Article:
                return lock_article(session, article_id)

            changes = plan(locked)
            return [
                apply_update(session, c.article_id, c.content, actor, True, c.superseded_by, None, None)
                for c in changes
            ]

    def delete(self, article_id: int, actor: str) -> int:
        """Delete an article and its versions; returns the outbox ``seq`` of the deletion.

        Raises:
            NotFoundError: no such article.
        """
        with self.database.session() as session:
            article = lock_article(session, article_id)  # after a concurrent update, not beside it
            article.updated_by = actor  # the deleter, for the audit row (kb.identity.observer)
            session.delete(article)
            seq = enqueue(session, article_id, "delete")
        logger.info("article %s deleted by %s", article_id, actor)
        return seq

    def upsert_imported(
        self, collection: str, source_path: str, content: ArticleContent, actor: str
    ) -> tuple[ImportOutcome, WriteResult]:
        """Create or update the article imported from ``collection``/``source_path``.

        An unchanged file changes nothing; a changed one makes a new version of the same article.
        """
        with self.database.session() as session:
            existing = session.scalar(
                select(Article.id).where(Article.collection == collection, Article.source_path == source_path)
            )
        if existing is None:
            return "created", self.create(
                content, actor, source="import", collection=collection, source_path=source_path
            )
        result = self.update(existing, content, actor, lifecycle=False)
        return ("updated" if result.seq is not None else "unchanged"), result

    def retire_missing(self, collection: str, present: set[str], actor: str) -> list[int]:
        """Retire (status ``retired``) articles of ``collection`` whose source path is not in ``present``."""
        with self.database.session() as session:
            rows = session.execute(
                select(Article.id, Article.source_path).where(
                    Article.collection == collection, Article.status != "retired"
                )
            ).all()
        retired: list[int] = []
        for article_id, path in rows:
            if path not in present:
                self.modify(article_id, lambda a: content_of(a).model_copy(update={"status": "retired"}), actor,
                            lifecycle=False)  # fmt: skip
                retired.append(article_id)
        return retired

    def set_status(
        self,
        article_id: int,
        status: str,
        actor: str,
        *,
        superseded_by: int | None = None,
        review_by: dt.date | None = None,
    ) -> WriteResult:
        """Move an article to ``status`` (see :meth:`update` for the rules and errors); a new version of its
        content as it is when the status changes (:meth:`modify`)."""
        return self.modify(
            article_id,
            lambda article: content_of(article).model_copy(update={"status": status}),
            actor,
            superseded_by=superseded_by,
            review_by=review_by,
        )

    def modify(
        self,
        article_id: int,
        change: Callable[[Article], ArticleContent],
        actor: str,
        *,
        lifecycle: bool = True,
        superseded_by: int | None = None,
        review_by: dt.date | None = None,
        restored_from: int | None = None,
    ) -> WriteResult:
        """Write ``change(article)`` as :meth:`update` does, ``article`` read under its row lock in the same
        transaction (:func:`~kb.articles.rows.lock_article`): a change of a few fields (a status, a list in
        ``meta``) keeps whatever a concurrent write committed before it, never reverts it (a read before the write's
        transaction would: session 12's review of the lost-update fix, which had covered PUT only).

        Raises:
            NotFoundError: no such article. Whatever ``change`` and :meth:`update` raise; nothing is changed then.
        """
        with self.database.session() as session:
            article = lock_article(session, article_id)
            return apply_update(
                session,
                article_id,
                change(article),
                actor,
                lifecycle,
                superseded_by,
                review_by,
                restored_from,
                None,
            )

    # -- versions --------------------------------------------------------------------------------

    def versions(self, article_id: int) -> list[ArticleVersion]:
        """Every saved version of an article, oldest first.

        Raises:
            NotFoundError: no such article.
        """
        self.get(article_id)
        with self.database.session() as session:
            query = select(ArticleVersion).where(ArticleVersion.article_id == article_id)
            return list(session.scalars(query.order_by(ArticleVersion.version)))

    def version(self, article_id: int, version: int) -> ArticleVersion:
        """One saved version.

        Raises:
            NotFoundError: no such article or version.
        """
        with self.database.session() as session:
            row = session.scalar(
                select(ArticleVersion).where(ArticleVersion.article_id == article_id, ArticleVersion.version == version)
            )
        if row is None:
            raise NotFoundError(f"Article {article_id} has no version {version}.")
        return row

    def restore(self, article_id: int, version: int, actor: str) -> WriteResult:
        """Make the content of ``version`` current again, as a new version. The status stays as it is: a
        restore never moves an article through the lifecycle.

        Raises:
            NotFoundError: no such article or version.
        """
        old = content_of_version(self.version(article_id, version))
        return self.modify(
            article_id, lambda current: old.model_copy(update={"status": current.status}), actor, restored_from=version
        )
