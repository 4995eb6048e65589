"""Article writes that are searchable when they return (read-your-writes), and imports.

Each write is committed with its outbox row by :class:`kb.articles.store.ArticleStore`, then the outbox is applied
by the index manager (the one index writer) before the call returns. If applying fails, the write stays committed
and :attr:`WriteOutcome.indexed` says so; the server's background applier retries until the index catches up.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kb.articles import proposals, reviews
from kb.articles.content import ArticleContent
from kb.articles.rows import Change, content_of
from kb.articles.store import ArticleStore
from kb.errors import ConflictError, InvalidInputError, KBError
from kb.ingest.markdown import IMPORT_BATCH_FILES, ImportReport, import_paths
from kb.models import Article
from kb.search.index import IndexManager

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteOutcome:
    """An article after a write; ``indexed`` is False when the index has not caught up yet with ``seq``."""

    article: Article | None
    seq: int | None
    indexed: bool


class ArticleWriter:
    """Writes articles and Markdown imports, each searchable on return.

    Args:
        store: the articles and their outbox.
        index: applies the outbox to both index legs.
    """

    def __init__(self, store: ArticleStore, index: IndexManager) -> None:
        self.store = store
        self.index = index

    def _sync(self, article: Article | None, seq: int | None) -> WriteOutcome:
        if seq is None:
            return WriteOutcome(article, None, True)
        try:
            applied = self.index.apply_pending(until=seq)
        except KBError as exc:
            logger.error("change %s saved but not indexed yet: %s", seq, exc.message)
            return WriteOutcome(article, seq, False)
        return WriteOutcome(article, seq, applied >= seq)

    def create(self, content: ArticleContent, actor: str) -> WriteOutcome:
        """Store a new article and make it searchable."""
        result = self.store.create(content, actor)
        return self._sync(result.article, result.seq)

    def update(
        self, article_id: int, content: ArticleContent, actor: str, expected_version: int | None = None
    ) -> WriteOutcome:
        """Replace an article's content (new version if changed) and make the change searchable.

        Raises:
            NotFoundError: no such article.
            ConflictError: ``expected_version`` given and the article is at another version.
        """
        result = self.store.update(article_id, content, actor, expected_version=expected_version)
        return self._sync(result.article, result.seq)

    def set_status(
        self,
        article_id: int,
        status: str,
        actor: str,
        *,
        superseded_by: int | None = None,
        review_by: dt.date | None = None,
    ) -> WriteOutcome:
        """Move an article through the lifecycle (see :mod:`kb.articles.lifecycle`); the change is searchable on
        return (a retired or draft article leaves default search, a published one enters it).

        Raises:
            NotFoundError: no such article.
            TransitionError: the move is not allowed (409, with the allowed statuses).
            InvalidInputError: bad ``superseded_by``.
        """
        result = self.store.set_status(article_id, status, actor, superseded_by=superseded_by, review_by=review_by)
        return self._sync(result.article, result.seq)

    def restore(self, article_id: int, version: int, actor: str) -> WriteOutcome:
        """Make an old version's content current again, as a new version (status unchanged).

        Raises:
            NotFoundError: no such article or version.
        """
        result = self.store.restore(article_id, version, actor)
        return self._sync(result.article, result.seq)

    def delete(self, article_id: int, actor: str) -> WriteOutcome:
        """Delete an article and remove it from both index legs.

        Raises:
            NotFoundError: no such article.
        """
        return self._sync(None, self.store.delete(article_id, actor))

    def accept_proposal(self, proposal_id: int, actor: str) -> WriteOutcome:
        """Accept an update proposal (:mod:`kb.articles.proposals`): its body becomes the target article's next
        version, then the proposal is retired with the target as successor. Answers the target's outcome.

        Raises:
            NotFoundError: no such proposal or target article.
            InvalidInputError: the article is no update proposal.
            ConflictError: the proposal is decided already, or the target is retired (nothing is changed).

        Both writes are one transaction, decided under the rows' locks (:meth:`ArticleStore.update_together`): a
        failure changes nothing, and of two concurrent accepts the second finds the proposal decided (409).
        """

        named = proposals.check_open(self.store.get(proposal_id))  # to lock the lower id first, as a change of
        # the target's scope locks it and then its proposals (kb.articles.rows): never each waiting for the other

        def plan(locked: Callable[[int], Article]) -> list[Change]:
            first = locked(min(proposal_id, named))
            second = locked(max(proposal_id, named))
            proposal, target = (first, second) if first.id == proposal_id else (second, first)
            if proposals.check_open(proposal) != named:
                raise ConflictError(f"Update proposal {proposal_id} changed while it was accepted; retry.")
            retired = content_of(proposal).model_copy(update={"status": "retired"})
            return [
                Change(target.id, proposals.applied_content(proposal, target)),
                Change(proposal_id, retired, superseded_by=target.id),
            ]

        applied, retired = self.store.update_together(plan, actor)
        seqs = [r.seq for r in (applied, retired) if r.seq is not None]
        return self._sync(applied.article, max(seqs) if seqs else None)

    def reject_proposal(self, proposal_id: int, actor: str) -> WriteOutcome:
        """Reject an update proposal: it is retired (``meta.proposal_rejected_by``), the target is untouched.

        Raises:
            NotFoundError: no such proposal.
            InvalidInputError: the article is no update proposal.
            ConflictError: the proposal is decided already.
        """

        def rejected(proposal: Article) -> ArticleContent:  # decided under the proposal's lock, as an accept is
            proposals.check_open(proposal)
            return proposals.rejected_content(proposal, actor)

        result = self.store.modify(proposal_id, rejected, actor)
        return self._sync(result.article, result.seq)

    def create_known_error(self, review_id: int, actor: str) -> WriteOutcome:
        """Create a draft known-error article from a post-incident review (see
        :func:`kb.articles.reviews.known_error_from_review`) and list it in the review's
        ``meta["review"]["known_errors"]``.

        Raises:
            NotFoundError: no such article.
            InvalidInputError: the article is not a post-incident review.
        """
        review = self.store.get(review_id)
        if review.kind != reviews.KIND:
            raise InvalidInputError(f"Article {review_id} is a {review.kind}, not a post-incident review.")
        content = content_of(review)
        outcome = self.create(reviews.known_error_from_review(review_id, content), actor)
        assert outcome.article is not None
        known_error = outcome.article.id

        def listed(current: Article) -> ArticleContent:  # the review as it is now, not as read above
            now = content_of(current)
            info = dict(now.meta.get("review", {}))
            info["known_errors"] = [*info.get("known_errors", []), known_error]
            return now.model_copy(update={"meta": now.meta | {"review": info}})

        result = self.store.modify(review_id, listed, actor)
        self._sync(result.article, result.seq)
        return outcome

    def import_paths(
        self,
        paths: list[Path],
        actor: str,
        *,
        collection: str | None = None,
        delete_missing: bool = False,
        as_reviews: bool = False,
        progress: Callable[[int, int, Path], None] | None = None,
    ) -> ImportReport:
        """Import Markdown folders (see :func:`kb.ingest.markdown.import_paths`), indexing the changes after every
        :data:`~kb.ingest.markdown.IMPORT_BATCH_FILES` files (one outbox batch each) and at the end."""
        return import_paths(
            self.store,
            paths,
            actor,
            collection=collection,
            delete_missing=delete_missing,
            as_reviews=as_reviews,
            progress=progress,
            on_batch=lambda: self.index.apply_pending(batch_size=IMPORT_BATCH_FILES),
        )
