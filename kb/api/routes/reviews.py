"""Post-incident reviews over HTTP: the template, writing a review, reading its sections, making a known error."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from kb.api.deps import KB, CurrentUser, requires
from kb.api.guard import GuardedRoute
from kb.api.params import ArticleId
from kb.api.schemas.articles import WriteAnswer
from kb.api.schemas.reviews import ReviewIn, ReviewOut
from kb.api.views import answer, check_proposal_target, detail
from kb.articles.reviews import KIND, TEMPLATE, parse_review, split_sections
from kb.errors import InvalidInputError
from kb.identity.permissions import Permission as P
from kb.identity.scopes import readable_article

router = APIRouter(prefix="/reviews", tags=["reviews"], route_class=GuardedRoute)


@router.get("/template", response_class=Response, dependencies=[requires(P.REVIEW)])
def template() -> Response:
    """The review template (Markdown with front matter)."""
    return Response(TEMPLATE, media_type="text/markdown; charset=utf-8")


@router.post("", response_model=ReviewOut, status_code=status.HTTP_201_CREATED, dependencies=[requires(P.REVIEW)])
def create_review(kb: KB, user: CurrentUser, payload: ReviewIn, response: Response) -> ReviewOut:
    """Store a review; one missing sections is accepted as a draft and ``missing`` lists them."""
    parsed = parse_review(payload.body, status=payload.status)
    check_proposal_target(kb, user, parsed.content)
    outcome = kb.writer.create(parsed.content, user.username)
    assert outcome.article is not None
    if not outcome.indexed:
        response.status_code = status.HTTP_202_ACCEPTED
    review = dict(outcome.article.meta.get("review", {}))
    return ReviewOut(
        article=detail(kb, outcome.article, user),
        sections=parsed.sections,
        review=review,
        missing=parsed.missing,
        indexed=outcome.indexed,
    )


@router.get("/{article_id}", response_model=ReviewOut, dependencies=[requires(P.REVIEW)])
def get_review(kb: KB, user: CurrentUser, article_id: ArticleId) -> ReviewOut:
    """A review with its sections. 404 for an unknown id or one the caller may not read, 422 when the article is
    not a review."""
    article = readable_article(user, kb.store.get(article_id))
    if article.kind != KIND:
        raise InvalidInputError(f"Article {article_id} is a {article.kind}, not a post-incident review.")
    review = dict(article.meta.get("review", {}))
    return ReviewOut(
        article=detail(kb, article, user),
        sections=split_sections(article.body),
        review=review,
        missing=list(review.get("missing", [])),
    )


@router.post(
    "/{article_id}/known-error",
    response_model=WriteAnswer,
    status_code=status.HTTP_201_CREATED,
    dependencies=[requires(P.REVIEW)],
)
def make_known_error(kb: KB, user: CurrentUser, article_id: ArticleId, response: Response) -> WriteAnswer:
    """Create a draft known-error article (KCS template) from a review, and link it from the review. 404 for a
    review the caller may not read (its text would reach the new article)."""
    readable_article(user, kb.store.get(article_id))
    return answer(kb, kb.writer.create_known_error(article_id, user.username), response, created=True, viewer=user)
