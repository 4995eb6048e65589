"""Editor pages: the review queue (``/ui/review``) with accept / reject of update proposals, the Markdown editor
with live preview (``/ui/editor``; for a post-incident review the missing template sections show as one types),
and publish / retire with a successor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from starlette.responses import RedirectResponse, Response

from kb.api.deps import KB, CurrentUser, requires
from kb.api.params import MAX_ID, ArticleId
from kb.api.views import check_successor, readable_proposal
from kb.articles.content import KINDS, MAX_BODY_CHARS
from kb.articles.reviews import KIND as REVIEW_KIND
from kb.identity.permissions import Permission as P
from kb.identity.scopes import readable_article, visible_article
from kb.web.editor_view import editor_text, preview, review_queue_view, save
from kb.web.routing import PageRoute
from kb.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
#: Longest editor text, in characters: the longest body the store takes plus room for the front matter.
MAX_TEXT = MAX_BODY_CHARS + 20_000
Kind = Annotated[str, Query(pattern="^(" + "|".join(KINDS) + ")$")]
FormKind = Annotated[str, Form(pattern="^(" + "|".join(KINDS) + ")$")]


@router.get("/ui/review", dependencies=[requires(P.ARTICLE_WRITE)])
def review_queue(kb: KB, user: CurrentUser, request: Request) -> Response:
    """Articles due for review (expired, poor feedback), update proposals with their diffs, drafts (also those
    distilled from tickets), in review."""
    return render(request, "review.html", user=user, view=review_queue_view(kb, user))


@router.get("/ui/editor", dependencies=[requires(P.ARTICLE_WRITE)])
def editor(
    kb: KB,
    user: CurrentUser,
    request: Request,
    id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    kind: Kind = "article",
) -> Response:
    """The editor for article ``id`` or a new article of ``kind`` (``post_incident_review``: the 复盘 template)."""
    article = visible_article(user, kb.store.get(id)) if id is not None else None
    kind = article.kind if article is not None else kind
    text = editor_text(article, kind)
    return render(
        request,
        "editor.html",
        user=user,
        article=article,
        kind=kind,
        text=text,
        view=preview(text, kind),
        review_kind=REVIEW_KIND,
    )


@router.post("/ui/editor/preview", dependencies=[requires(P.ARTICLE_WRITE)])
def live_preview(
    user: CurrentUser,
    request: Request,
    body: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    kind: FormKind = "article",
) -> Response:
    """The preview fragment of the text typed so far (nothing is stored)."""
    return render(request, "_preview.html", user=user, view=preview(body, kind))


@router.post("/ui/editor", dependencies=[requires(P.ARTICLE_WRITE)])
def save_article(
    kb: KB,
    user: CurrentUser,
    body: Annotated[str, Form(min_length=1, max_length=MAX_TEXT)],
    kind: FormKind = "article",
    id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    version: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
) -> Response:
    """Save the editor's text (create or new version) and open the article. ``version`` is the version the editor
    opened (a hidden field): a 409 page, and nothing stored, when the article changed since (as ``PUT
    /articles/{id}``), so a save never silently reverts another editor's change; a 404 page for an article the
    caller may not read."""
    if id is not None:
        readable_article(user, kb.store.get(id))
    outcome = save(kb, id, body, kind, user, expected_version=version)
    article_id = outcome.article.id if outcome.article is not None else id
    return RedirectResponse(f"/ui/articles/{article_id}", status_code=303)


@router.post("/ui/articles/{article_id}/status", dependencies=[requires(P.ARTICLE_WRITE)])
def change_status(
    kb: KB,
    user: CurrentUser,
    article_id: ArticleId,
    status: Annotated[str, Form(pattern="^(draft|in_review|published|retired)$")],
    successor: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
) -> Response:
    """Move the article through the lifecycle (``kb.writer.set_status``, as ``POST /articles/{id}/status``):
    publish, send to review, retire with a successor (409 page when the lifecycle does not allow it; 404 page for
    an article the caller may not read)."""
    readable_article(user, kb.store.get(article_id))
    successor = successor if status == "retired" else None
    check_successor(kb, user, successor)
    kb.writer.set_status(article_id, status, user.username, superseded_by=successor)
    return RedirectResponse(f"/ui/articles/{article_id}", status_code=303)


@router.post("/ui/proposals/{article_id}/{decision}", dependencies=[requires(P.ARTICLE_WRITE)])
def decide_proposal(
    kb: KB, user: CurrentUser, article_id: ArticleId, decision: Annotated[str, PathParam(pattern="^(accept|reject)$")]
) -> Response:
    """Accept (the target article gets the proposal's body as a new version; opens the target) or reject (back to
    the queue) an update proposal: ``kb.writer.accept_proposal`` / ``reject_proposal``, as
    ``POST /articles/{id}/proposal/accept|reject``. 422 page for an article that is no proposal, 409 when decided."""
    readable_proposal(kb, user, article_id)  # and the article it would overwrite
    if decision == "accept":
        outcome = kb.writer.accept_proposal(article_id, user.username)
        target = outcome.article.id if outcome.article is not None else article_id
        return RedirectResponse(f"/ui/articles/{target}?accepted={article_id}", status_code=303)
    kb.writer.reject_proposal(article_id, user.username)
    return RedirectResponse("/ui/review#proposals", status_code=303)
