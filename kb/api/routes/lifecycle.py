"""Article lifecycle over HTTP: status moves, versions (list, read, diff, restore), feedback, usage, the review
queue and Markdown export. Registered before :mod:`kb.api.routes.articles` so ``/articles/review-queue`` is not
read as an article id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from kb.api.deps import KB, Audit, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.api.params import MAX_VERSION, ArticleId, VersionNo
from kb.api.schemas.articles import ArticlePublic, ArticleStatsOut, WriteAnswer
from kb.api.schemas.lifecycle import (
    FeedbackIn,
    FeedbackOut,
    ReviewItemOut,
    StatusChange,
    UsageIn,
    VersionDetail,
    VersionDiff,
    VersionOut,
)
from kb.api.views import answer, check_successor, readable_proposal
from kb.articles.content import to_markdown
from kb.articles.rows import content_of
from kb.articles.versions import diff_versions
from kb.identity.permissions import Permission as P
from kb.identity.scopes import readable_article, readable_version, readable_versions, usable_article
from kb.models import ArticleVersion

router = APIRouter(prefix="/articles", tags=["lifecycle"], route_class=GuardedRoute)


def _version(row: ArticleVersion) -> VersionOut:
    return VersionOut(
        version=row.version,
        title=row.title,
        created_at=row.created_at,
        created_by=row.created_by,
        status=row.fields.get("status"),
    )


@router.get("/review-queue", response_model=list[ReviewItemOut], dependencies=[requires(P.ARTICLE_WRITE)])
def review_queue(kb: KB, user: CurrentUser) -> list[ReviewItemOut]:
    """Published articles past their review-by date or with poor feedback (see :mod:`kb.articles.feedback`)."""
    return [
        ReviewItemOut(
            article=ArticlePublic.model_validate(item.article, from_attributes=True),
            reasons=item.reasons,
            stats=ArticleStatsOut.model_validate(item.stats, from_attributes=True),
        )
        for item in kb.feedback.review_queue(viewer=user)
    ]


@router.post("/{article_id}/status", response_model=WriteAnswer, dependencies=[requires(P.ARTICLE_WRITE)])
def change_status(
    kb: KB, user: CurrentUser, article_id: ArticleId, payload: StatusChange, response: Response
) -> WriteAnswer:
    """Move an article through the lifecycle. 409 ``illegal_transition`` with ``allowed`` when not allowed; 404 for
    an article the caller may not read; 422 for a ``superseded_by`` the caller may not read, as for one that does
    not exist."""
    readable_article(user, kb.store.get(article_id))
    check_successor(kb, user, payload.superseded_by)
    outcome = kb.writer.set_status(
        article_id, payload.status, user.username, superseded_by=payload.superseded_by, review_by=payload.review_by
    )
    return answer(kb, outcome, response, viewer=user)


@router.post("/{article_id}/proposal/accept", response_model=WriteAnswer, dependencies=[requires(P.ARTICLE_WRITE)])
def accept_proposal(kb: KB, user: CurrentUser, article_id: ArticleId, response: Response) -> WriteAnswer:
    """Accept update proposal ``article_id`` (:mod:`kb.articles.proposals`): its body becomes the target article's
    next version (answered), the proposal is retired. 422 when it is no proposal, 409 when already decided; 404 for
    a proposal the caller may not read, or whose target they may not read."""
    readable_proposal(kb, user, article_id)
    return answer(kb, kb.writer.accept_proposal(article_id, user.username), response, viewer=user)


@router.post("/{article_id}/proposal/reject", response_model=WriteAnswer, dependencies=[requires(P.ARTICLE_WRITE)])
def reject_proposal(kb: KB, user: CurrentUser, article_id: ArticleId, response: Response) -> WriteAnswer:
    """Reject update proposal ``article_id``: it is retired, its target untouched. 422 / 409 / 404 as for accept."""
    readable_proposal(kb, user, article_id)
    return answer(kb, kb.writer.reject_proposal(article_id, user.username), response, viewer=user)


@router.get("/{article_id}/versions", response_model=list[VersionOut], dependencies=[requires(P.ARTICLE_READ)])
def list_versions(kb: KB, user: CurrentUser, article_id: ArticleId) -> list[VersionOut]:
    """Every saved version, oldest first."""
    article = kb.store.get(article_id)
    return [_version(row) for row in readable_versions(user, article, kb.store.versions(article_id))]


@router.get("/{article_id}/versions/{version}", response_model=VersionDetail, dependencies=[requires(P.ARTICLE_READ)])
def get_version(kb: KB, user: CurrentUser, article_id: ArticleId, version: VersionNo) -> VersionDetail:
    """One saved version with its content. 404 for an unknown version."""
    article = kb.store.get(article_id)
    row = readable_version(user, readable_article(user, article), kb.store.version(article_id, version))
    return VersionDetail(**_version(row).model_dump(), body=row.body, fields=row.fields)


@router.get("/{article_id}/diff", response_model=VersionDiff, dependencies=[requires(P.ARTICLE_READ)])
def diff(
    kb: KB,
    user: CurrentUser,
    article_id: ArticleId,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to_version: Annotated[
        int | None, Query(alias="to", ge=1, le=2**31 - 1, description="Default: the current version.")
    ] = None,
) -> VersionDiff:
    """Unified diff between two versions (Markdown with front matter)."""
    article = readable_article(user, kb.store.get(article_id))
    target = to_version or article.version
    old, new = (readable_version(user, article, kb.store.version(article_id, v)) for v in (from_version, target))
    text = diff_versions(old, new)
    return VersionDiff(article_id=article_id, from_version=from_version, to_version=target, diff=text)


@router.post(
    "/{article_id}/versions/{version}/restore", response_model=WriteAnswer, dependencies=[requires(P.ARTICLE_WRITE)]
)
def restore(kb: KB, user: CurrentUser, article_id: ArticleId, version: VersionNo, response: Response) -> WriteAnswer:
    """Make an old version's content current again, as a new version (the status does not change); audited as
    ``article.restore``. 404 for an article or a version the caller may not read (a restore would bring back the
    version's visibility too)."""
    article = readable_article(user, kb.store.get(article_id))
    readable_version(user, article, kb.store.version(article_id, version))
    outcome = kb.writer.restore(article_id, version, user.username)  # audited in its own transaction (store)
    return answer(kb, outcome, response, viewer=user)


@router.post(
    "/{article_id}/feedback", response_model=FeedbackOut, status_code=201, dependencies=[requires(P.ARTICLE_FEEDBACK)]
)
def add_feedback(kb: KB, user: CurrentUser, article_id: ArticleId, payload: FeedbackIn) -> FeedbackOut:
    """Record helpful / not helpful (with ``query`` when voting on a search result); 409 ``article_not_published``
    for a draft, an article in review or a retired one."""
    usable_article(user, kb.store.get(article_id))
    row = kb.feedback.add_feedback(
        article_id, payload.helpful, user.username, comment=payload.comment, query=payload.query
    )
    return FeedbackOut.model_validate(row, from_attributes=True)


@router.get("/{article_id}/feedback", response_model=list[FeedbackOut], dependencies=[requires(P.ARTICLE_READ)])
def list_feedback(kb: KB, user: CurrentUser, article_id: ArticleId) -> list[FeedbackOut]:
    """The newest votes on an article (at most 50): all of them for those who may edit articles (they review them),
    else the caller's own (others' names, queries and comments are not theirs to read)."""
    readable_article(user, kb.store.get(article_id))
    rows = kb.feedback.feedback(article_id)
    if not user.may(P.ARTICLE_WRITE):
        rows = [row for row in rows if row.actor == user.username]
    return [FeedbackOut.model_validate(row, from_attributes=True) for row in rows]


@router.post(
    "/{article_id}/usage", response_model=ArticleStatsOut, status_code=201, dependencies=[requires(P.ARTICLE_FEEDBACK)]
)
def record_usage(kb: KB, user: CurrentUser, article_id: ArticleId, payload: UsageIn) -> ArticleStatsOut:
    """Count a use of an article (``resolved``: the desk's, 403 without ``ticket.work``; it names, by its number, a
    ticket the caller may see, 404 otherwise; once per ticket and article, a repeat changes nothing); answers the
    article's new counts; 409 ``article_not_published`` as for feedback."""
    usable_article(user, kb.store.get(article_id))
    kb.feedback.record_usage(article_id, payload.event, user.username, ticket=payload.ticket, viewer=user)
    stats = kb.feedback.stats([article_id], viewer=user)[article_id]
    return ArticleStatsOut.model_validate(stats, from_attributes=True)


@router.get("/{article_id}/markdown", response_class=Response, dependencies=[requires(P.ARTICLE_READ)])
def export_markdown(kb: KB, user: CurrentUser, audit: Audit, article_id: ArticleId) -> Response:
    """The article as Markdown with YAML front matter, the import format (``kb import`` reads it back); audited as
    ``article.export``."""
    text = to_markdown(content_of(readable_article(user, kb.store.get(article_id))))
    kb.audit.write(audit, "article.export", f"article {article_id}", reason="markdown")
    return Response(text, media_type="text/markdown; charset=utf-8")
