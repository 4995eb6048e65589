"""Who may see an update proposal: exactly who may see the article it would overwrite.

An update proposal (:mod:`kb.articles.proposals`) holds a new body for its target article, usually distilled from
tickets about it, and a title naming it (``更新建议：<target's title>``). Stored with its own visibility, a proposal
about an article restricted to one group was readable and searchable by everyone its own (default ``internal``)
visibility let in: session 14's outside tester created one with ``POST /articles`` and found its proposed body by
search as another user. So the one rule, applied by every write of an article (:mod:`kb.articles.rows`):

- a proposal is stored with its target's ``visibility`` and ``restricted_to`` (whatever it was given), when the
  target exists;
- when an article's ``visibility`` or ``restricted_to`` changes, every proposal about it that is not retired gets
  the same in the same transaction, as a new version of each (searched with it as soon as its outbox row is
  applied).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kb.articles.content import ArticleContent
from kb.models import Article

#: The fields of an article that say who may read it, copied from a target to its proposals.
SCOPE_FIELDS = ("visibility", "restricted_to")


def target_id(meta: Mapping[str, Any] | None) -> int | None:
    """The id of the article a ``meta`` (an article's ``meta`` column) proposes to update: ``target_article`` when
    ``proposal`` is ``"update"``; None when it is no update proposal (or the id is no integer)."""
    meta = meta or {}
    target = meta.get("target_article")
    if meta.get("proposal") != "update" or not isinstance(target, int) or isinstance(target, bool):
        return None
    return target


def scope_of(article: Article) -> dict[str, Any]:
    """``article``'s visibility and ``restricted_to`` (a list, as :class:`ArticleContent` holds it)."""
    return {"visibility": article.visibility, "restricted_to": list(article.restricted_to or [])}


def scoped_to_target(session: Session, content: ArticleContent, article_id: int | None = None) -> ArticleContent:
    """``content`` as it is stored: an update proposal with its existing target's scope (:data:`SCOPE_FIELDS`),
    anything else unchanged. ``article_id`` is the article being written (a proposal naming itself keeps its own
    scope). The target is read in ``session`` (no lock: a concurrent change of the target's scope takes the
    proposal's row lock after it and copies its scope again, :func:`proposals_about`)."""
    target = target_id(content.meta)
    if target is None or target == article_id:
        return content
    row = session.get(Article, target)
    if row is None:
        return content
    scope = scope_of(row)
    if all(getattr(content, field) == scope[field] for field in SCOPE_FIELDS):
        return content
    return content.model_copy(update=scope)


def proposals_about(session: Session, article_id: int) -> list[int]:
    """Ids of the update proposals about article ``article_id`` that are not retired (the ones to follow a change
    of its scope), ascending. One statement on the ``meta`` JSON column (SQLite ``json_extract``, PostgreSQL
    ``->>``)."""
    query = select(Article.id, Article.meta).where(
        Article.status != "retired",
        Article.id != article_id,
        Article.meta["target_article"].as_integer() == article_id,
    )
    return sorted(row_id for row_id, meta in session.execute(query) if target_id(meta) == article_id)
