"""The editor pages' views: the review queue (articles due for review, drafts, articles in review) and the
Markdown editor's live preview, which for a post-incident review (复盘) lists the template sections still missing
(:func:`kb.articles.reviews.parse_review`, the same parser that stores reviews)."""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from kb.articles.content import parse_markdown, to_markdown
from kb.articles.feedback import ReviewItem
from kb.articles.rendering import check_renderable, render_html
from kb.articles.reviews import KIND as REVIEW_KIND
from kb.articles.reviews import SECTIONS, TEMPLATE, parse_review
from kb.articles.store import ArticleFilter, content_of
from kb.errors import KBError
from kb.ingest.writer import WriteOutcome
from kb.models import Article
from kb.service import KnowledgeBase

#: Reasons of the review queue as the page shows them.
REASON_LABELS = {"expired": "已过审核期", "poor_feedback": "反馈差"}
#: Most drafts / articles in review listed.
MAX_LISTED = 200


@dataclass(frozen=True)
class ReviewQueueView:
    """Published articles due for review with their reasons, drafts (``distilled``: drafted from tickets), and
    articles waiting in review."""

    due: list[ReviewItem]
    drafts: list[Article]
    in_review: list[Article]


def review_queue_view(kb: KnowledgeBase) -> ReviewQueueView:
    """The review queue (``kb.feedback.review_queue``, as ``GET /articles/review-queue``) plus drafts and articles
    in review (``kb.store.list_articles``)."""
    drafts, _ = kb.store.list_articles(ArticleFilter(statuses=("draft",)), 0, MAX_LISTED)
    waiting, _ = kb.store.list_articles(ArticleFilter(statuses=("in_review",)), 0, MAX_LISTED)
    return ReviewQueueView(kb.feedback.review_queue(), drafts, waiting)


@dataclass(frozen=True)
class Preview:
    """The live preview: safe HTML of the body, the review's missing sections (reviews only), and the problem that
    stops saving (front matter or Markdown the store would refuse), '' when none."""

    html: Markup
    review: bool
    missing: list[str] = field(default_factory=list)
    sections: tuple[str, ...] = SECTIONS
    problem: str = ""


def preview(text: str, kind: str) -> Preview:
    """Preview ``text`` (Markdown with optional front matter) as an article of ``kind``."""
    review = kind == REVIEW_KIND
    try:
        if review:
            parsed = parse_review(text, fallback_title="复盘")
            body, missing = parsed.content.body, parsed.missing
        else:
            body, missing = parse_markdown(text, fallback_title="未命名").body, []
        check_renderable(body)
    except KBError as exc:
        return Preview(Markup(""), review, [], SECTIONS, exc.message)
    return Preview(Markup(render_html(body)), review, missing)  # safe: the renderer


def editor_text(article: Article | None, kind: str) -> str:
    """The editor's starting text: the article as Markdown with front matter, the 复盘 template for a new review,
    else a title line."""
    if article is not None:
        return to_markdown(content_of(article))
    return TEMPLATE if kind == REVIEW_KIND else "# 标题\n\n"


def save(kb: KnowledgeBase, article_id: int | None, text: str, kind: str, actor: str) -> WriteOutcome:
    """Create (``article_id`` None) or replace an article from the editor's text: a review through
    :func:`parse_review` (a review missing sections stays a draft), anything else through ``parse_markdown``.

    Raises:
        ArticleFormatError: bad front matter or body (nothing is stored).
        NotFoundError: no such article.
    """
    if kind == REVIEW_KIND:
        content = parse_review(text, fallback_title="复盘").content
    else:
        content = parse_markdown(text, kind=kind) if article_id is None else parse_markdown(text)
    if article_id is None:
        return kb.writer.create(content, actor)
    return kb.writer.update(article_id, content, actor)
