"""Why did (or didn't) an article match a query? The why-not debugger behind ``kb why``.

Reports, for one query and one article: the query's analysis (terms, synonym expansions, identifiers), which
query terms the article holds and where (title, headings, body), each term's IDF, the article's rank in the
BM25 leg, its best chunk's cosine and that chunk's rank in the vector leg, its rank in the hybrid answer, and
whether the default filters (status) would hide it.

Everything is as the caller may see it: ranks count only articles they may see, and index-wide statistics
(``idf``, which counts the chunks holding a term) are shown only to a caller who may see every article
(:func:`kb.search.visible_terms.sees_every_article`); for others ``idf`` is None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kb.articles.chunks import ChunkStore
from kb.articles.filters import ArticleFilter
from kb.articles.store import ArticleStore
from kb.identity.scopes import READABLE_STATUSES, Principal
from kb.search.embedders.base import Embedder, decode_vectors
from kb.search.generation import LiveIndex
from kb.search.results import MAX_LIMIT, SearchRequest, SearchResult
from kb.search.text import TextAnalyzer
from kb.search.visible_terms import sees_every_article

#: Depth of each leg searched for the article's rank (chunks).
DEEP = 1000


@dataclass(frozen=True)
class TermMatch:
    """One query term: its BM25 ``idf`` in chunk bodies (>= 0, 0 when no chunk holds it; 4 decimals; None when the
    caller may not see every article, as the count behind it includes articles hidden from them) and the parts
    of the article that hold it, among ``title``, ``headings`` and ``body`` (empty: not in the article). The JSON key
    of ``in_`` is ``in``."""

    term: str
    idf: float | None
    in_: list[str]


@dataclass(frozen=True)
class ArticleInfo:
    """The article asked about: id, title, status and its number of chunks."""

    id: int
    title: str
    status: str
    chunks: int


@dataclass(frozen=True)
class BM25Place:
    """The article's 1-based rank among articles in the BM25 leg (its best chunk's; None: not in the first
    :data:`DEEP` chunks), and a ``note`` when the query has no keyword terms."""

    rank: int | None
    note: str | None


@dataclass(frozen=True)
class VectorPlace:
    """The article's best chunk for the query (``ord``), its cosine in [-1, 1], and that chunk's 1-based rank among
    chunks in the vector leg (None: not in the first :data:`DEEP`). All None when the article has no embedding."""

    best_chunk: int | None
    cosine: float | None
    chunk_rank: int | None


@dataclass(frozen=True)
class WhyReport:
    """The answer of :meth:`MatchExplainer.explain` (see module docstring). ``hybrid_rank`` is 1-based among the
    first 100 hybrid results with every status (None: not among them); ``hidden_by_default_filters`` gives a reason
    per default filter that excludes the article. :meth:`as_json` is the JSON the API and ``kb why --json`` show."""

    query: str
    normalized_query: str
    terms: list[TermMatch]
    matched_terms: int
    identifiers: list[str]
    article: ArticleInfo
    bm25: BM25Place
    vector: VectorPlace
    hybrid_rank: int | None
    hidden_by_default_filters: list[str]

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``dataclasses.asdict``; a field named ``in_`` is written ``in``)."""
        return asdict(self, dict_factory=_json_keys)


def _json_keys(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key.removesuffix("_"): value for key, value in items}


class MatchExplainer:
    """Explains one query against one article, from the same parts as the engine.

    Args:
        analyzer: the index's text analyzer.
        embedder: the index's embedding model.
        index: gives the live generation's legs.
        store: the article.
        chunks: the article's stored chunks and embeddings.
        search: the hybrid search (:meth:`kb.search.engine.SearchEngine.search`), for the article's final rank.
    """

    def __init__(
        self,
        analyzer: TextAnalyzer,
        embedder: Embedder,
        index: LiveIndex,
        store: ArticleStore,
        chunks: ChunkStore,
        search: Callable[[SearchRequest], SearchResult],
    ) -> None:
        self.analyzer = analyzer
        self.embedder = embedder
        self.index = index
        self.store = store
        self.chunks = chunks
        self.search = search

    def explain(self, query: str, article_id: int, viewer: Principal | None = None) -> WhyReport:
        """Why ``article_id`` did or did not match ``query`` (see module docstring), as ``viewer`` may see it (None:
        the system, which sees every article). The caller checks that ``viewer`` may read the article itself.

        Raises:
            NotFoundError: the article does not exist.
            QueryTooLongError: the query is too long.
        """
        SearchRequest(query).validate()
        article = self.store.get(article_id)
        analyzer = self.analyzer
        analysis = analyzer.analyze_query(query)
        gen = self.index.generation
        chunks = self.chunks.of_article(article_id)
        places = {
            "title": set(analyzer.terms(article.title)),
            "headings": {t for c in chunks for h in c.heading_path for t in analyzer.terms(h)},
            "body": {t for c in chunks for t in analyzer.terms(c.text)},
        }
        idf: dict[str, float] | None = gen.bm25.idf(analysis.terms) if sees_every_article(viewer) else None
        terms = [
            TermMatch(
                t,
                None if idf is None else round(idf.get(t, 0.0), 4),
                [name for name, have in places.items() if t in have],
            )
            for t in analysis.terms
        ]
        # the articles the viewer may see: every status for an editor (and the system), else not the drafts and
        # reviews in progress (found by session 9's outside tester: a requester's ranks counted drafts)
        statuses = () if viewer is None or viewer.is_editor else READABLE_STATUSES
        seen = ArticleFilter(statuses=statuses, viewer=viewer)
        bm25_hits = gen.bm25.search(dict.fromkeys(analysis.terms, 1.0), DEEP) if analysis.terms else []
        visible = self._visible(seen, {h.article_id for h in bm25_hits})
        bm25_articles = [aid for aid in dict.fromkeys(h.article_id for h in bm25_hits) if aid in visible]
        bm25_rank = next((i for i, aid in enumerate(bm25_articles, 1) if aid == article_id), None)
        query_vector = self.embedder.encode_queries([analysis.normalized])[0]
        best_cosine, best_ord, vector_rank = None, None, None
        embedded = [c for c in chunks if c.embedding]
        if embedded:
            matrix = decode_vectors([c.embedding for c in embedded], gen.vectors.dimension)
            cosines = matrix @ query_vector
            best = int(np.argmax(cosines))
            best_cosine, best_ord = float(cosines[best]), embedded[best].ord
            vector_hits = gen.vectors.search(query_vector, DEEP)
            visible = self._visible(seen, {h.article_id for h in vector_hits})
            vector_hits = [h for h in vector_hits if h.article_id in visible]
            vector_rank = next(
                (i for i, h in enumerate(vector_hits, 1) if (h.article_id, h.ord) == (article_id, best_ord)), None
            )
        answer = self.search(SearchRequest(query, limit=MAX_LIMIT, filters=seen))
        hybrid_rank = next((i for i, h in enumerate(answer.results, 1) if h.article_id == article_id), None)
        hidden = [] if ArticleFilter().matches(article) else [f"status is {article.status!r}; search shows published"]
        return WhyReport(
            query=query,
            normalized_query=analysis.normalized,
            terms=terms,
            matched_terms=sum(1 for t in terms if t.in_),
            identifiers=list(analysis.identifiers),
            article=ArticleInfo(article.id, article.title, article.status, len(chunks)),
            bm25=BM25Place(bm25_rank, None if analysis.terms else "the query has no keyword terms"),
            vector=VectorPlace(best_ord, best_cosine, vector_rank),
            hybrid_rank=hybrid_rank,
            hidden_by_default_filters=hidden,
        )

    def _visible(self, seen: ArticleFilter, article_ids: set[int]) -> set[int]:
        """Those of ``article_ids`` that ``seen`` (every status, its viewer's visibility) passes (one query)."""
        if seen.viewer is None:
            return article_ids
        return {aid for aid, summary in self.store.summaries(article_ids).items() if seen.matches(summary)}
