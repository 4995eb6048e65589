"""View models of the pages: what a template shows, built from the use cases' answers (search results, articles,
counts). Templates only print these; every decision (what is safe HTML, which date is shown) is made here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from markupsafe import Markup

from kb.articles.content import KINDS
from kb.articles.filters import ArticleFilter
from kb.identity.scopes import Principal
from kb.search.results import SearchRequest, SearchResult
from kb.service import KnowledgeBase
from kb.web.labels import ARTICLE_KINDS

#: Articles shown per search on the page.
PAGE_RESULTS = 10


@dataclass(frozen=True)
class SearchForm:
    """The search box and its filters as typed: query text, service, kind (one of :data:`KINDS` or ''), and tags
    (comma- or space-separated)."""

    q: str = ""
    service: str = ""
    kind: str = ""
    tags: str = ""

    def tag_list(self) -> tuple[str, ...]:
        """The tags, split on commas, ideographic commas and white space."""
        return tuple(t for t in self.tags.replace("，", ",").replace(" ", ",").split(",") if t.strip())

    def request(self, viewer: Principal) -> SearchRequest:
        """The engine request of this form (published articles ``viewer`` may see, :data:`PAGE_RESULTS` results)."""
        flt = ArticleFilter(
            statuses=("published",),
            kinds=(self.kind,) if self.kind else (),
            services=(self.service.strip(),) if self.service.strip() else (),
            tags=self.tag_list(),
            viewer=viewer,
        )
        return SearchRequest(query=self.q, limit=PAGE_RESULTS, filters=flt)


@dataclass(frozen=True)
class HitView:
    """One result row: ``snippet`` is safe HTML (escaped by :func:`kb.search.snippets.highlight`, ``<mark>``
    only); ``reviewed`` the date the article was last published after review, else last changed."""

    article_id: int
    title: str
    snippet: Markup
    heading_path: list[str]
    service: str | None
    kind: str
    reviewed: dt.date
    helpful: int
    not_helpful: int


@dataclass(frozen=True)
class SearchView:
    """A search answer for the page: the hits, ``low_confidence`` as the engine judged it, and how long it took."""

    form: SearchForm
    hits: list[HitView] = field(default_factory=list)
    low_confidence: bool = False
    took_ms: float = 0.0
    searched: bool = False


def search_view(kb: KnowledgeBase, form: SearchForm, viewer: Principal) -> SearchView:
    """Run ``form`` through the search engine (the use case of ``GET /search``) and add, per hit, its article's
    review date and helpful votes. An empty query answers an empty view (no search).

    Raises:
        QueryTooLongError, InvalidInputError: as :meth:`kb.search.results.SearchRequest.validate`.
    """
    if not form.q.strip():
        return SearchView(form)
    result: SearchResult = kb.engine.search(form.request(viewer))
    ids = [hit.article_id for hit in result.results]
    stats = kb.feedback.stats(ids, viewer=viewer)
    hits = []
    for hit in result.results:
        article = kb.store.get(hit.article_id)
        reviewed = (article.published_at or article.updated_at).date()
        counts = stats[hit.article_id]
        hits.append(
            HitView(
                hit.article_id,
                hit.title,
                Markup(hit.snippet),  # safe: highlight() escapes all
                hit.heading_path,
                hit.service,
                hit.kind,
                reviewed,
                counts.helpful,
                counts.not_helpful,
            )
        )
    return SearchView(form, hits, result.low_confidence, result.took_ms, True)


def kind_options() -> list[tuple[str, str]]:
    """(kind, label) of every article kind, for the filter."""
    return [(kind, ARTICLE_KINDS.get(kind, kind)) for kind in KINDS]
