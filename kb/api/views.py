"""Views: how the API renders kb objects (articles with HTML and counts, tickets, use-case answers)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import Response, status

from kb.api.schemas.articles import ArticleDetail, ArticleStatsOut, WriteAnswer
from kb.api.schemas.tickets import TicketOut
from kb.articles.content import ArticleContent
from kb.articles.lifecycle import no_successor
from kb.articles.links import article_link_rewriter
from kb.articles.proposal_scope import target_id
from kb.articles.proposals import no_target, proposal_target
from kb.articles.rendering import render_html
from kb.desk.intake import Handled
from kb.desk.records import shows_work_notes
from kb.errors import InvalidInputError, NotFoundError
from kb.identity.scopes import Principal, missing_article, readable_article, readable_successor, usable_article
from kb.ingest.writer import WriteOutcome
from kb.models import Article, Ticket
from kb.service import KnowledgeBase

#: Sees no ticket: the viewer of an answer that did not say who it is for (fails closed).
NOBODY = Principal("", ())


def detail(kb: KnowledgeBase, article: Article, viewer: Principal | None = None) -> ArticleDetail:
    """The API view of one article, with rendered HTML and its usage and feedback counts; ``stats.tickets`` lists
    the tickets ``viewer`` may see (none when no viewer is given), ``superseded_by`` only a successor ``viewer`` may
    read (:func:`kb.identity.scopes.readable_successor`)."""
    stats = kb.feedback.stats([article.id], viewer=viewer or NOBODY)[article.id]
    successor = readable_successor(viewer or NOBODY, article, kb.store.get)
    return ArticleDetail.model_validate(
        {
            **{c: getattr(article, c) for c in ArticleDetail.model_fields if hasattr(article, c)},
            "html": _html(kb, article, viewer or NOBODY),
            "stats": ArticleStatsOut.model_validate(stats, from_attributes=True),
            "superseded_by": successor.id if successor is not None else None,
        }
    )


def _html(kb: KnowledgeBase, article: Article, viewer: Principal) -> str:
    """The article's HTML; links to other articles' ``.md`` files follow :mod:`kb.articles.links` (to
    ``/articles/{id}`` when ``viewer`` may read it, else dropped). A body naming no such file keeps the cache."""
    lowered = article.body.lower()
    if ".md" not in lowered and ".markdown" not in lowered:
        return render_html(article.body)
    link = article_link_rewriter(kb.store, article, viewer, lambda linked: f"/articles/{linked}")
    return render_html(article.body, lambda kind, url: link(url) if kind == "link" else url)


def answer(
    kb: KnowledgeBase,
    outcome: WriteOutcome,
    response: Response,
    created: bool = False,
    viewer: Principal | None = None,
) -> WriteAnswer:
    """The answer to a write: 201 (created) or 200 once searchable, 202 while the index catches up; the article as
    :func:`detail` shows it to ``viewer``."""
    if not outcome.indexed:
        response.status_code = status.HTTP_202_ACCEPTED
    elif created:
        response.status_code = status.HTTP_201_CREATED
    return WriteAnswer(
        article=detail(kb, outcome.article, viewer) if outcome.article is not None else None,
        indexed=outcome.indexed,
        seq=outcome.seq,
    )


def ticket_view(ticket: Ticket, viewer: Principal) -> dict[str, Any]:
    """A ticket as the API answers it to ``viewer`` (:class:`kb.api.schemas.tickets.TicketOut`): the work notes
    only for callers who work tickets (:func:`kb.desk.records.shows_work_notes`), ``""`` for others."""
    out = TicketOut.model_validate(ticket, from_attributes=True).model_dump(mode="json")
    if not shows_work_notes(viewer):
        out["work_notes"] = ""
    return out


def handled_view(handled: Handled, viewer: Principal) -> dict[str, Any]:
    """A ticket after a use case (as :func:`ticket_view` shows it to ``viewer``), with its suggestions when it made
    some."""
    out: dict[str, Any] = {"ticket": ticket_view(handled.ticket, viewer)}
    if handled.suggestions is not None:
        out["suggestions"] = handled.suggestions.as_dict()
    return out


def check_closing_articles(kb: KnowledgeBase, viewer: Principal, article_ids: Iterable[int]) -> None:
    """The one rule for the articles a ticket is closed with (API and the ticket page): each must be one
    ``viewer`` may see (else 404, as a missing article) and published (else 409 ``article_not_published``: a draft
    resolved nothing a customer could read), checked before anything changes.

    Raises:
        NotFoundError, ArticleNotPublishedError: as :func:`kb.identity.scopes.usable_article`.
    """
    for article_id in article_ids:
        usable_article(viewer, kb.store.get(article_id))


def readable_proposal(kb: KnowledgeBase, viewer: Principal, article_id: int) -> tuple[Article, Article | None]:
    """Article ``article_id`` when ``viewer`` may read it and, for an update proposal, the article it would
    overwrite (when that still exists): the check of every route and page that decides a proposal. Returns the
    article and that target (None: no proposal, or its target is gone).

    Raises:
        NotFoundError: no such article, or the viewer may not read it or its target (the answer of a missing
            article ``article_id``: nothing tells that the target exists).
    """
    proposal = readable_article(viewer, kb.store.get(article_id))
    target = proposal_target(proposal)
    if target is None:
        return proposal, None
    try:
        overwritten = kb.store.get(target)
    except NotFoundError:
        return proposal, None  # gone: the writer answers it (a proposal whose target is gone can only be rejected)
    try:
        return proposal, readable_article(viewer, overwritten)
    except NotFoundError as exc:
        raise NotFoundError(missing_article(article_id)) from exc


def check_successor(kb: KnowledgeBase, viewer: Principal, superseded_by: int | None) -> None:
    """Refuse a successor ``viewer`` may not read, as one that does not exist (retiring an article names it to
    everyone who may read it, :func:`kb.identity.scopes.readable_successor`).

    Raises:
        InvalidInputError: ``superseded_by`` names an article the viewer may not read, or none.
    """
    if superseded_by is not None:
        _named_readable(kb, viewer, superseded_by, no_successor)


def check_proposal_target(kb: KnowledgeBase, viewer: Principal, content: ArticleContent) -> None:
    """Refuse an update proposal (``meta.proposal: update``) whose target ``viewer`` may not read, as one that
    does not exist: a proposal is stored with its target's visibility (:mod:`kb.articles.proposal_scope`), so the
    answer would tell the target's groups. The check of every route and page that writes an article's content.

    Raises:
        InvalidInputError: ``meta.target_article`` names an article the viewer may not read, or none (422).
    """
    target = target_id(content.meta)
    if target is not None:
        _named_readable(kb, viewer, target, no_target)


def _named_readable(
    kb: KnowledgeBase, viewer: Principal, article_id: int, refusal: Callable[[int], InvalidInputError]
) -> None:
    """Raise ``refusal(article_id)`` unless ``viewer`` may read article ``article_id`` (a missing one and a hidden
    one are refused alike)."""
    try:
        readable_article(viewer, kb.store.get(article_id))
    except NotFoundError as exc:
        raise refusal(article_id) from exc
