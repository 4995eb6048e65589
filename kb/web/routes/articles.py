"""The article page (``/ui/articles/{id}``), its preview fragment for the search page, its images
(``/ui/articles/{id}/media/{path}``) and the feedback form."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from kb.api.deps import KB, CurrentUser, requires
from kb.api.params import ArticleId
from kb.articles.feedback import MAX_COMMENT_CHARS
from kb.config import MAX_QUERY_CHARS
from kb.identity.permissions import Permission as P
from kb.identity.permissions import allowed
from kb.identity.scopes import readable_article, usable_article
from kb.web.article_media import media_file
from kb.web.article_view import article_view
from kb.web.routing import PageRoute
from kb.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/ui/articles/{article_id}", dependencies=[requires(P.ARTICLE_READ)])
def article_page(
    kb: KB,
    user: CurrentUser,
    request: Request,
    article_id: ArticleId,
    diff: Annotated[int | None, Query(ge=2, le=1_000_000)] = None,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
) -> Response:
    """The article: rendered body, facts, versions (``?diff=N`` shows N-1 -> N), feedback, tickets it resolved.
    Counts a view, as ``GET /articles/{id}`` does. Drafts and articles in review need the editor role (404
    otherwise, as a missing article)."""
    article = readable_article(user, kb.store.get(article_id))
    kb.feedback.record_usage(article_id, "view", user.username)
    view = article_view(kb, article, user, diff)
    can_edit = allowed(user.roles, P.ARTICLE_WRITE)
    return render(request, "article.html", user=user, view=view, q=q, max_comment=MAX_COMMENT_CHARS, can_edit=can_edit)


@router.get("/ui/articles/{article_id}/panel", dependencies=[requires(P.ARTICLE_READ)])
def article_panel(kb: KB, user: CurrentUser, request: Request, article_id: ArticleId) -> Response:
    """The article as a fragment for the preview pane of the search page (counts a view)."""
    article = readable_article(user, kb.store.get(article_id))
    kb.feedback.record_usage(article_id, "view", user.username)
    return render(request, "_article_panel.html", user=user, view=article_view(kb, article, user))


#: Headers of every image answer: no sniffing, and an SVG opened on its own runs no script and loads nothing.
MEDIA_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, max-age=300",
}


@router.get("/ui/articles/{article_id}/media/{path:path}", dependencies=[requires(P.ARTICLE_READ)])
def article_media(
    kb: KB, user: CurrentUser, article_id: ArticleId, path: Annotated[str, Path(max_length=1000)]
) -> Response:
    """An image next to the article's Markdown file (:mod:`kb.web.article_media`: inside the article's own folder
    only, images only), to whoever may read the article (404 page otherwise, as for a missing article)."""
    article = readable_article(user, kb.store.get(article_id))
    file, media_type = media_file(kb.settings.articles_dir, article, path)
    return FileResponse(file, media_type=media_type, headers=MEDIA_HEADERS)


@router.post("/ui/articles/{article_id}/feedback", dependencies=[requires(P.ARTICLE_FEEDBACK)])
def feedback(
    kb: KB,
    user: CurrentUser,
    article_id: ArticleId,
    helpful: Annotated[str, Form(pattern="^(yes|no)$")],
    comment: Annotated[str, Form(max_length=MAX_COMMENT_CHARS)] = "",
    q: Annotated[str, Form(max_length=MAX_QUERY_CHARS)] = "",
) -> Response:
    """Record a helpful / not helpful vote with an optional comment (``kb.feedback.add_feedback``, as
    ``POST /articles/{id}/feedback``) and show the article again; a draft answers 409 ``article_not_published``."""
    usable_article(user, kb.store.get(article_id))
    kb.feedback.add_feedback(article_id, helpful == "yes", user.username, comment=comment, query=q or None)
    return RedirectResponse(f"/ui/articles/{article_id}?thanks=1&q={quote(q)}", status_code=303)
