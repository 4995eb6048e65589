"""The editor pages' views: the review queue (articles due for review, update proposals with their diffs, drafts,
articles in review) and the Markdown editor's live preview, which for a post-incident review (复盘) lists the
template sections still missing (:func:`kb.articles.reviews.parse_review`, the same parser that stores reviews)."""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from kb.api.views import check_proposal_target, readable_proposal
from kb.articles.content import parse_markdown, to_markdown
from kb.articles.feedback import ReviewItem
from kb.articles.filters import ArticleFilter
from kb.articles.proposals import proposal_diff, proposal_target
from kb.articles.rendering import check_renderable, render_html
from kb.articles.reviews import KIND as REVIEW_KIND
from kb.articles.reviews import SECTIONS, TEMPLATE, parse_review
from kb.articles.rows import content_of
from kb.errors import KBError, NotFoundError
from kb.identity.scopes import Principal
from kb.ingest.writer import WriteOutcome
from kb.models import Article
from kb.service import KnowledgeBase
from kb.web.article_view import DiffLine, diff_lines

#: Most drafts / articles in review listed.
MAX_LISTED = 200


@dataclass(frozen=True)
class ProposalView:
    """An update proposal (:mod:`kb.articles.proposals`) with the article it would update (None when that is gone
    or the editor may not see it) and the diff accepting it would make (empty without a target; ``problem`` says
    why it cannot be accepted, '' when it can)."""

    proposal: Article
    target: Article | None
    diff: list[DiffLine]
    problem: str = ""


@dataclass(frozen=True)
class ReviewQueueView:
    """Published articles due for review with their reasons, update proposals from distillation with their diffs,
    other drafts (``distilled``: drafted from tickets), and articles waiting in review."""

    due: list[ReviewItem]
    proposals: list[ProposalView]
    drafts: list[Article]
    in_review: list[Article]


def proposal_view(kb: KnowledgeBase, proposal: Article, viewer: Principal) -> ProposalView | None:
    """``proposal`` (a row of a list, its body not loaded) beside its target article for ``viewer`` (an editor);
    None when the viewer may not decide it (:func:`kb.api.views.readable_proposal`, what its forms check)."""
    try:
        proposal, target = readable_proposal(kb, viewer, proposal.id)
    except NotFoundError:
        return None
    if target is None:
        return ProposalView(proposal, None, [], "要更新的文章已不存在，只能拒绝。")
    if target.status == "retired":
        return ProposalView(proposal, target, [], "要更新的文章已停用：请更新它的后继文章，或拒绝此建议。")
    return ProposalView(proposal, target, diff_lines(proposal_diff(proposal, target)))


def review_queue_view(kb: KnowledgeBase, viewer: Principal) -> ReviewQueueView:
    """The review queue (``kb.feedback.review_queue``, as ``GET /articles/review-queue``), update proposals
    (drafts or articles in review with ``meta.proposal == "update"``) with their diffs, the other drafts and
    articles in review (``kb.store.list_articles``): only those ``viewer`` may read, and only proposals they may
    decide (:func:`kb.api.views.readable_proposal`: the proposal and the article it would overwrite)."""
    drafts, _ = kb.store.list_articles(ArticleFilter(statuses=("draft",), viewer=viewer), 0, MAX_LISTED)
    waiting, _ = kb.store.list_articles(ArticleFilter(statuses=("in_review",), viewer=viewer), 0, MAX_LISTED)
    listed = (proposal_view(kb, a, viewer) for a in (*drafts, *waiting) if proposal_target(a) is not None)
    proposals = [view for view in listed if view is not None]
    return ReviewQueueView(
        kb.feedback.review_queue(viewer=viewer),
        proposals,
        [a for a in drafts if proposal_target(a) is None],
        [a for a in waiting if proposal_target(a) is None],
    )


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


def save(
    kb: KnowledgeBase,
    article_id: int | None,
    text: str,
    kind: str,
    viewer: Principal,
    expected_version: int | None = None,
) -> WriteOutcome:
    """Create (``article_id`` None) or replace an article from the editor's text: a review through
    :func:`parse_review` (a review missing sections stays a draft), anything else through ``parse_markdown``.
    ``expected_version``: the version the editor opened, for a replacement (None: no check). Written by
    ``viewer``, who must be able to read an update proposal's target (:func:`kb.api.views.check_proposal_target`).

    Raises:
        ArticleFormatError: bad front matter or body (nothing is stored).
        NotFoundError: no such article.
        ConflictError: the article is no longer at ``expected_version`` (nothing is stored).
        InvalidInputError: an update proposal about an article ``viewer`` may not read, or none.
    """
    if kind == REVIEW_KIND:
        content = parse_review(text, fallback_title="复盘").content
    else:
        content = parse_markdown(text, kind=kind) if article_id is None else parse_markdown(text)
    check_proposal_target(kb, viewer, content)
    if article_id is None:
        return kb.writer.create(content, viewer.username)
    return kb.writer.update(article_id, content, viewer.username, expected_version=expected_version)
