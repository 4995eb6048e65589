"""The article lifecycle: draft -> in_review -> published -> retired, and the rules around it.

Allowed transitions (:data:`TRANSITIONS`), after KCS v6 practice (Consortium for Service Innovation, "KCS v6
Practices Guide", article states *Work in Progress*, *Not Validated*, *Validated*, *Archived*)::

    draft      -> in_review, retired
    in_review  -> draft (changes requested), published (approved), retired
    published  -> in_review (flagged for review), retired
    retired    -> draft (revived; goes through review again)

Publishing records the reviewer and sets the review-by date :data:`DEFAULT_REVIEW_DAYS` days ahead unless one is
given. Retiring may name a successor (``superseded_by``); search and ``GET /articles/{id}`` lead to it.
Imports are not held to the transitions: the files are the source of truth for imported articles.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from kb.errors import InvalidInputError, SupersedeCycleError, TransitionError
from kb.models import Article, utcnow

#: Statuses an article can move to from each status (every status of :data:`kb.articles.content.STATUSES` is a key).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("in_review", "retired"),
    "in_review": ("draft", "published", "retired"),
    "published": ("in_review", "retired"),
    "retired": ("draft",),
}

#: Days from publication to the review-by date when none is given (a yearly review, the usual KCS cadence).
DEFAULT_REVIEW_DAYS = 365


def no_successor(superseded_by: int) -> InvalidInputError:
    """The error of a ``superseded_by`` that names no other existing article (or one the caller may not read: the
    same answer, so nothing tells that it exists)."""
    return InvalidInputError(f"superseded_by must name another existing article, not {superseded_by}.")


def check_transition(current: str, requested: str) -> None:
    """Raise :class:`TransitionError` unless ``current -> requested`` is allowed (staying put always is)."""
    if requested != current and requested not in TRANSITIONS.get(current, ()):
        raise TransitionError("An article", current, requested, TRANSITIONS.get(current, ()))


def default_review_by(today: dt.date) -> dt.date:
    """The review-by date of an article published on ``today``."""
    return today + dt.timedelta(days=DEFAULT_REVIEW_DAYS)


def apply_lifecycle(
    session: Session,
    article: Article,
    status: str,
    actor: str,
    superseded_by: int | None,
    review_by: dt.date | None,
) -> bool:
    """Set the lifecycle columns for a move of ``article`` to ``status``; whether any of them changed.
    Publishing records ``actor`` as reviewer and the review-by date (``review_by`` or a year ahead); retiring
    records ``superseded_by``.

    Raises:
        InvalidInputError: ``superseded_by`` given for another status, or naming no other existing article.
        SupersedeCycleError: the successor is, through its own successors, replaced by ``article`` (409).
    """
    before = (article.reviewer, article.review_by, article.superseded_by, article.published_at)
    if superseded_by is not None:
        if status != "retired":
            raise InvalidInputError("superseded_by applies only when an article is retired.")
        if superseded_by == article.id or session.get(Article, superseded_by) is None:
            raise no_successor(superseded_by)
        _check_no_cycle(session, article.id, superseded_by)
        article.superseded_by = superseded_by
    if status == "published" and article.status != "published":
        article.reviewer = actor
        article.published_at = utcnow()
        article.review_by = review_by or default_review_by(dt.date.today())
    elif review_by is not None:
        article.review_by = review_by
    if status != "retired":
        article.superseded_by = None
    return before != (article.reviewer, article.review_by, article.superseded_by, article.published_at)


#: Key of the advisory lock serialising successor changes on PostgreSQL (any constant other than the outbox's;
#: "kbsupe" in ASCII hex).
SUPERSEDE_LOCK_KEY = 0x6B62_7375_7065


def _check_no_cycle(session: Session, article_id: int, successor: int) -> None:
    """Raise :class:`SupersedeCycleError` when following ``superseded_by`` from ``successor`` comes back to
    ``article_id`` (A replaced by B and B by A would send a reader round in circles; found by session 7's outside
    tester). Each step reads one row; a chain holds each article once, so the walk ends.

    On PostgreSQL the walk first takes a transaction-scoped advisory lock (:data:`SUPERSEDE_LOCK_KEY`, released at
    commit or rollback): two transactions retiring A for B and B for A at once each read the other's row as it was
    before (READ COMMITTED; only the retired article's row is locked), and both committed a cycle (session 12's
    outside tester: 6 of 12 pairs). Serialised, the second walk sees the first's commit. Taken before the outbox
    lock (:func:`kb.articles.outbox.enqueue`) by every writer that takes both, so the two never wait on each other in
    a circle. SQLite serialises writers itself."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SUPERSEDE_LOCK_KEY})
    seen = {article_id}
    step: int | None = successor
    while step is not None:
        if step in seen:
            raise SupersedeCycleError(
                f"Article {successor} is itself replaced, through its successors, by article {article_id}: "
                "retire it with a successor outside that chain."
            )
        seen.add(step)
        step = session.scalar(select(Article.superseded_by).where(Article.id == step))
