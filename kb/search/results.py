"""Temporary: replaced by the search-layout branch."""

from kb.search.engine import LegScore, SearchHit, SearchRequest, SearchResult

__all__ = ["LegScore", "SearchHit", "SearchRequest", "SearchResult"]
