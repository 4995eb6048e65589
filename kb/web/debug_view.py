"""The hit-testing page's view (``/ui/debug/search``, for editors): the query as analysed, each leg's own
candidates with raw and normalised scores, the fused order with each hit's place in both legs, and "why not
article X" (:mod:`kb.search.why`). Every number comes from the engine (``explain=True``) and ``kb why``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kb.articles.filters import ArticleFilter
from kb.identity.scopes import Principal, visible_article
from kb.search.results import SearchRequest, SearchResult
from kb.service import KnowledgeBase

#: Candidates shown per leg and in the fused order.
DEPTH = 20


@dataclass(frozen=True)
class DebugView:
    """The three searches of one query (``hybrid`` with explain, ``bm25`` and ``vector`` alone) and, when an
    article was named, its :meth:`kb.search.why.WhyReport.as_json`."""

    query: str
    hybrid: SearchResult | None
    bm25: SearchResult | None
    vector: SearchResult | None
    why: dict[str, Any] | None


def debug_view(kb: KnowledgeBase, query: str, article_id: int | None, viewer: Principal) -> DebugView:
    """Run the query in every mode with explanations (published articles, :data:`DEPTH` results each).

    Raises:
        QueryTooLongError: the query is too long.
        NotFoundError: ``article_id`` names no article.
    """
    if not query.strip():
        return DebugView(query, None, None, None, None)
    runs = {
        mode: kb.engine.search(
            SearchRequest(query=query, mode=mode, limit=DEPTH, explain=True, filters=ArticleFilter(viewer=viewer))
        )
        for mode in ("hybrid", "bm25", "vector")
    }
    if article_id is not None:
        visible_article(viewer, kb.store.get(article_id))
    why = kb.engine.why(query, article_id).as_json() if article_id is not None else None
    return DebugView(query, runs["hybrid"], runs["bm25"], runs["vector"], why)
