"""Articles: list, read (with rendered HTML), create, replace, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from kb.api.deps import KB, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.api.params import MAX_ID, ArticleId
from kb.api.schemas.articles import (
    ArticleCreate,
    ArticleDetail,
    ArticleList,
    ArticlePublic,
    ArticleUpdate,
    WriteAnswer,
)
from kb.api.views import answer, check_proposal_target, detail
from kb.articles.content import parse_markdown
from kb.articles.filters import ArticleFilter
from kb.articles.rows import content_of
from kb.identity.permissions import Permission as P
from kb.identity.scopes import readable_article

router = APIRouter(prefix="/articles", tags=["articles"], route_class=GuardedRoute)


def _explicit(payload: ArticleCreate) -> dict[str, Any]:
    return {k: v for k, v in payload.model_dump(exclude={"body"}).items() if v is not None}


@router.get("", response_model=ArticleList, dependencies=[requires(P.ARTICLE_READ)])
def list_articles(
    kb: KB,
    user: CurrentUser,
    status_: Annotated[list[str] | None, Query(alias="status")] = None,
    kind: Annotated[list[str] | None, Query()] = None,
    service: Annotated[list[str] | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ArticleList:
    """Articles, newest first; default all statuses for editors, published for everyone else (403 when someone
    without the editor role asks for other statuses)."""
    statuses = tuple(status_ or (() if user.is_editor else ("published",)))
    if set(statuses) - {"published"}:
        user.require_editor("Listing articles that are not published")
    flt = ArticleFilter(statuses=statuses, kinds=tuple(kind or ()), services=tuple(service or ()), viewer=user)
    items, total = kb.store.list_articles(flt, offset, limit)
    return ArticleList(
        total=total,
        offset=offset,
        limit=limit,
        items=[ArticlePublic.model_validate(a, from_attributes=True) for a in items],
    )


@router.get("/{article_id}", response_model=ArticleDetail, dependencies=[requires(P.ARTICLE_READ)])
def get_article(
    kb: KB,
    user: CurrentUser,
    article_id: ArticleId,
    response: Response,
    count_view: Annotated[bool, Query(description="Count this read as a view (false for automation).")] = True,
) -> ArticleDetail:
    """One article with rendered HTML and counts. 404 when it does not exist. A retired article replaced by
    another names it in ``superseded_by`` and in a ``Link: </articles/Y>; rel="successor-version"`` header
    (RFC 5829)."""
    article = readable_article(user, kb.store.get(article_id))
    if count_view:
        kb.feedback.record_usage(article_id, "view", user.username)
    shown = detail(kb, article, user)
    if shown.superseded_by is not None:  # named only when the caller may read it (kb.api.views.detail)
        response.headers["Link"] = f'</articles/{shown.superseded_by}>; rel="successor-version"'
    return shown


@router.post(
    "", response_model=WriteAnswer, status_code=status.HTTP_201_CREATED, dependencies=[requires(P.ARTICLE_WRITE)]
)
def create_article(kb: KB, user: CurrentUser, payload: ArticleCreate, response: Response) -> WriteAnswer:
    """Create an article; answers 201 once it is searchable (202 if indexing is still catching up)."""
    content = parse_markdown(payload.body, **_explicit(payload))
    check_proposal_target(kb, user, content)
    return answer(kb, kb.writer.create(content, user.username), response, created=True, viewer=user)


@router.put("/{article_id}", response_model=WriteAnswer, dependencies=[requires(P.ARTICLE_WRITE)])
def update_article(
    kb: KB, user: CurrentUser, article_id: ArticleId, payload: ArticleUpdate, response: Response
) -> WriteAnswer:
    """Replace an article's content; fields left out keep their values. A change makes a new version.

    A new ``body`` may carry front matter: what it names (title, tags, visibility, ...) replaces the stored value
    and is validated like a new article's (422 ``article_format`` when invalid); fields given in the request win
    over both. 409 ``conflict`` when the article changed between this request's read and its write (the fields
    it keeps would revert that change otherwise). 404 for an article the caller may not read, as ``GET``."""
    stored = readable_article(user, kb.store.get(article_id))
    current = content_of(stored)
    body = payload.body if "body" in payload.model_fields_set else current.body
    content = parse_markdown(body, defaults=current.model_dump(exclude={"body"}), **_explicit(payload))
    check_proposal_target(kb, user, content)
    # the kept fields were read above: a concurrent change since then answers 409, never silently reverted
    written = kb.writer.update(article_id, content, user.username, expected_version=stored.version)
    return answer(kb, written, response, viewer=user)


@router.delete("/{article_id}", response_model=WriteAnswer, dependencies=[requires(P.ARTICLE_WRITE)])
def delete_article(kb: KB, user: CurrentUser, article_id: ArticleId, response: Response) -> WriteAnswer:
    """Delete an article; it is gone from both index legs when this answers 200. 404 for an article the caller may
    not read, as ``GET``."""
    readable_article(user, kb.store.get(article_id))
    return answer(kb, kb.writer.delete(article_id, user.username), response)
