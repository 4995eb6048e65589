"""What a search is asked and what it answers: :class:`SearchRequest`, :class:`SearchResult` of
:class:`SearchHit`, and an article's :class:`LegScore` in each leg.

Shared by the engine (:mod:`kb.search.engine`), the why-not debugger (:mod:`kb.search.why`), the API, the CLI and
the desk, so none of them needs the engine's module for its types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kb.articles.store import ArticleFilter
from kb.config import MAX_QUERY_CHARS
from kb.errors import InvalidInputError, QueryTooLongError

Mode = Literal["hybrid", "bm25", "vector"]
MODES: tuple[str, ...] = ("hybrid", "bm25", "vector")
#: Most articles one search returns.
MAX_LIMIT = 100


@dataclass(frozen=True)
class LegScore:
    """An article's place in one leg: 1-based rank among articles, and its best chunk's raw score.

    BM25 scores are BM25F (> 0, unbounded); vector scores are cosine in [-1, 1].
    """

    rank: int
    score: float
    normalized: float | None = None


@dataclass
class SearchHit:
    """One article in a search answer. ``score`` in ``hybrid`` mode is the weighted fusion score in [0, 1]
    (or the RRF score, in (0, 2/61], with ``fusion="rrf"``); in ``bm25`` mode the BM25F score; in ``vector``
    mode the cosine in [-1, 1]."""

    article_id: int
    title: str
    source_path: str | None
    score: float
    snippet: str
    heading_path: list[str]
    version: int
    kind: str
    service: str | None
    status: str
    explain: dict[str, Any] | None = None


@dataclass
class SearchResult:
    """A search answer. ``no_keyword_terms`` is True when the query had nothing for the BM25 leg;
    ``low_confidence`` is True when there is no result or the best one is not a confident match
    (see :mod:`kb.search.confidence`)."""

    query: str
    mode: str
    took_ms: float
    results: list[SearchHit]
    no_keyword_terms: bool = False
    low_confidence: bool = True
    explain: dict[str, Any] | None = field(default=None)


@dataclass(frozen=True)
class SearchRequest:
    """A search: ``query`` text, ``mode``, ``limit`` (1..100) articles, filters, and ``explain``."""

    query: str
    mode: str = "hybrid"
    limit: int = 10
    filters: ArticleFilter = field(default_factory=ArticleFilter)
    explain: bool = False
    fusion: str | None = None
    bm25_weight: float | None = None

    def validate(self) -> None:
        """Raises :class:`QueryTooLongError` or :class:`InvalidInputError` for out-of-range values."""
        if len(self.query.strip()) > MAX_QUERY_CHARS:
            raise QueryTooLongError(
                f"The query has {len(self.query.strip())} characters; at most {MAX_QUERY_CHARS} are allowed."
            )
        if self.mode not in MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}.")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}.")
        if self.fusion not in (None, "weighted", "rrf"):
            raise InvalidInputError(f"fusion must be weighted or rrf, not {self.fusion!r}.")
        if self.bm25_weight is not None and not 0.0 <= self.bm25_weight <= 1.0:
            raise InvalidInputError("bm25_weight must be between 0 and 1.")
