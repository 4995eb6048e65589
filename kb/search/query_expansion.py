"""The weighted BM25 terms of a query: its own terms, then the expansions, each source below the user's words.

1. The query's own keyword terms (:func:`kb.search.keywords.keyword_terms`), weight 1.0.
2. Synonym groups (:mod:`kb.search.synonyms`, editable), at :data:`kb.search.synonyms.EXPANSION_WEIGHT`.
3. Desk synonyms 口语 => 术语 (:mod:`kb.search.desk_terms`, curated and mined from titles and headings), at
   ``desk_weight`` (off by default; :data:`kb.search.desk_terms.DESK_WEIGHT` when on).
4. Pseudo-relevance feedback (:mod:`kb.search.relevance_feedback`), when ``feedback`` is set: a first BM25
   pass with 1-3, and the RM3 terms of its top chunks.

A term keeps the highest weight any source gives it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select

from kb.articles.chunks import ChunkStore
from kb.models import Article, Chunk
from kb.search.article_cache import ArticleCache
from kb.search.bm25 import BM25Index
from kb.search.confidence import coverage
from kb.search.desk_terms import DeskSynonymSource
from kb.search.relevance_feedback import FeedbackSettings, feedback_terms
from kb.search.synonyms import EXPANSION_WEIGHT, SynonymStore
from kb.search.text import TextAnalyzer


def titles_and_headings(chunks: ChunkStore) -> Iterable[str]:
    """Every article title and every distinct heading of the stored chunks (for mining desk synonyms)."""
    with chunks.database.session() as session:
        titles = list(session.scalars(select(Article.title)))
        paths = session.scalars(select(Chunk.heading_path).distinct())
        headings = {h for path in paths for h in (path or [])}
    return [*titles, *sorted(headings)]


class QueryExpansion:
    """Builds a query's weighted BM25 terms (see module docstring). Thread-safe.

    Args:
        analyzer: the index's analyzer.
        synonyms: the editable synonym groups; None for none.
        cache: summaries and passages of the index version searched (feedback reads its top chunks here).
        chunks: the stored chunks (titles and headings for mining desk synonyms); None: curated rules only.

    Attributes:
        desk_weight: weight of desk-synonym terms, 0 (off, the default: setting ``KB_DESK_SYNONYM_WEIGHT``) to 1;
            :data:`kb.search.desk_terms.DESK_WEIGHT` is the measured one.
        feedback: RM3 settings; None turns feedback off.
    """

    def __init__(
        self, analyzer: TextAnalyzer, synonyms: SynonymStore | None, cache: ArticleCache, chunks: ChunkStore | None
    ) -> None:
        self.analyzer = analyzer
        self.synonyms = synonyms
        self._cache = cache
        self.desk = DeskSynonymSource(analyzer, (lambda: titles_and_headings(chunks)) if chunks is not None else None)
        self.desk_weight = 0.0
        self.feedback: FeedbackSettings | None = None

    def weights(self, normalized: str, terms: Sequence[str], bm25: BM25Index, version: int) -> dict[str, float]:
        """``{term: weight}`` for the BM25 leg: ``terms`` at 1.0, then each expansion (module docstring)."""
        weighted = {t: 1.0 for t in terms}
        if self.synonyms is not None:
            for term in self.synonyms.expander().expand(normalized, set(weighted)):
                weighted.setdefault(term, EXPANSION_WEIGHT)
        if self.desk_weight > 0:
            for term, w in self.desk.at(bm25.version).expand(normalized, weighted, self.desk_weight).items():
                weighted.setdefault(term, w)
        if self.feedback is not None and terms:
            for term, w in self._feedback(terms, weighted, bm25, version, self.feedback).items():
                weighted.setdefault(term, w)
        return weighted

    def _feedback(
        self,
        terms: Sequence[str],
        weighted: dict[str, float],
        bm25: BM25Index,
        version: int,
        settings: FeedbackSettings,
    ) -> dict[str, float]:
        first = bm25.search(weighted, settings.docs)
        if not first:
            return {}
        keys = [(h.article_id, h.ord) for h in first]
        passages = self._cache.passages(keys, version)
        summaries = self._cache.summaries({k[0] for k in keys}, version)
        texts = {
            k: " ".join([s.title if (s := summaries.get(k[0])) else "", *p.heading_path, p.text])
            for k in keys
            if (p := passages.get(k)) is not None
        }
        top_text = texts.get(keys[0], "")
        if coverage(list(terms), set(self.analyzer.terms(top_text)), bm25.idf(terms)) >= settings.max_coverage:
            return {}
        top = [((h.article_id, h.ord), h.score) for h in first]
        return feedback_terms(top, texts, weighted, self.analyzer, bm25.idf, settings)
