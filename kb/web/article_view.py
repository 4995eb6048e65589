"""The article page's view model: the article rendered by the safe renderer, its front matter facts, versions
with the diff of one of them, its feedback counts and the tickets it resolved."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from kb.articles.feedback import ArticleStats
from kb.articles.rendering import render_html
from kb.articles.versions import diff_versions
from kb.errors import NotFoundError
from kb.identity.scopes import Principal, readable_successor, readable_versions
from kb.models import Article, ArticleVersion
from kb.service import KnowledgeBase
from kb.web.article_links import url_rewriter
from kb.web.labels import label


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff and its CSS class: ``add``, ``del``, ``hunk`` or ``ctx``."""

    text: str
    css: str


@dataclass(frozen=True)
class ArticleView:
    """What the article page shows. ``html`` is safe (from :func:`kb.articles.rendering.render_html`: raw HTML
    off, unsafe link schemes refused); ``facts`` are (label, value) pairs of the front matter; ``diff`` the lines
    from version ``diff_of - 1`` to ``diff_of`` (empty when no diff is asked); ``successor`` the article that
    replaces a retired one."""

    article: Article
    html: Markup
    facts: list[tuple[str, str]]
    versions: list[ArticleVersion]
    stats: ArticleStats
    diff_of: int | None
    diff: list[DiffLine]
    successor: Article | None


def _facts(article: Article) -> list[tuple[str, str]]:
    pairs = [
        ("类型", label(article.kind, "kind")),
        ("服务", article.service or "—"),
        ("状态", label(article.status, "article_status")),
        ("可见范围", label(article.visibility, "visibility")),
        ("标签", "、".join(article.tags or []) or "—"),
        ("错误代码", "、".join(article.error_codes or []) or "—"),
        ("版本", str(article.version)),
        ("最后更新", f"{article.updated_at:%Y-%m-%d %H:%M} · {article.updated_by}"),
        ("审核人", article.reviewer or "—"),
        ("下次审核", article.review_by.isoformat() if article.review_by else "—"),
        ("来源", article.source_path or label(article.source, "source")),
    ]
    return pairs


def diff_lines(text: str) -> list[DiffLine]:
    """The lines of unified diff ``text``, each with its CSS class (:class:`DiffLine`)."""
    out = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            css = "hunk"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        elif line.startswith("@@"):
            css = "hunk"
        else:
            css = "ctx"
        out.append(DiffLine(line, css))
    return out


def article_view(kb: KnowledgeBase, article: Article, viewer: Principal, diff_of: int | None = None) -> ArticleView:
    """The view of ``article`` for ``viewer`` (a successor they may not see is not named; links and images as
    :mod:`kb.web.article_links` rewrites them); with ``diff_of`` (a version number > 1) the diff from the version
    before it.

    Raises:
        NotFoundError: ``diff_of`` names no version of the article, or the first one (nothing to compare).
    """
    versions = readable_versions(viewer, article, kb.store.versions(article.id))  # those whose text they may read
    diff: list[DiffLine] = []
    if diff_of is not None:
        by_number = {v.version: v for v in versions}
        if diff_of not in by_number or diff_of - 1 not in by_number:
            raise NotFoundError(f"Article {article.id} has no versions {diff_of - 1} and {diff_of} to compare.")
        diff = diff_lines(diff_versions(by_number[diff_of - 1], by_number[diff_of]))
    successor = readable_successor(viewer, article, kb.store.get)
    return ArticleView(
        article=article,
        html=Markup(render_html(article.body, url_rewriter(kb, article, viewer))),  # safe: markdown-it, raw HTML off
        facts=_facts(article),
        versions=versions,
        stats=kb.feedback.stats([article.id], viewer=viewer)[article.id],
        diff_of=diff_of,
        diff=diff,
        successor=successor,
    )
