"""Hybrid search: both legs, fusion, chunk -> article grouping, filters, snippets and explanations.

1. The query is checked (length), normalised and analysed once.
2. The BM25 leg (when the query has keyword terms) and the vector leg each return chunk candidates,
   oversampled (:data:`OVERSAMPLE` x the limit, at least :data:`MIN_CANDIDATES`).
3. Each leg's chunks are grouped to articles (:mod:`kb.search.grouping`): in the BM25 leg an article
   scores the ``chunk_decay``-ed sum of its best non-neighbouring chunk scores, so that an article whose query
   terms fall in different chunks need not lose to a short article holding one of them (default decay 0:
   best chunk only); in the vector leg its best chunk's cosine (optionally blended with the cosine of the
   article's outline, :mod:`kb.search.outline`; off by default). Equal leg scores share a rank. Vector-only
   articles whose cosine is below the model's calibrated unrelated level (``unrelated_cosine``) are not
   results: they are padding.
   A caller who may see no article at all gets its (empty) answer without either leg
   (:func:`kb.search.visible_terms.sees_nothing`; not with ``explain``, whose candidate counts the legs give).
4. Filters (status, kind, service, tags) are applied to the articles (summaries from the database, remembered
   per index version by :mod:`kb.search.article_cache`), before the limit;
   when filters leave too few, the candidate pools are widened and the search repeated.
5. Articles are fused (mode ``hybrid``: weighted score fusion by default, RRF on request, see
   :mod:`kb.search.fusion`) or ranked by one leg (``bm25``, ``vector``); a retired article's matches count for
   its successor; articles whose best passage is the same text as a better one's are folded into that result
   (its ``duplicates``), see :mod:`kb.search.duplicates`. With a second stage (:mod:`kb.search.rerank`), the
   hybrid mode's fused articles are reordered by a learned ranker before that; without it, past resolved
   tickets like the query add a bounded vote to the fused score (:mod:`kb.search.rerank.boost`).
6. The snippet is the article's best chunk (by chunk-level RRF), with query terms highlighted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from kb.articles.chunks import ChunkKey, ChunkPassage, ChunkStore
from kb.articles.filters import ArticleSummary
from kb.articles.store import ArticleStore
from kb.identity.scopes import Principal
from kb.search.article_cache import ArticleCache
from kb.search.confidence import Thresholds, scored_by, thresholds_for, top_confidence
from kb.search.duplicates import collapse
from kb.search.embedders.base import Embedder
from kb.search.fusion import RRF_K
from kb.search.generation import LiveIndex
from kb.search.grouping import CHUNK_DECAY
from kb.search.hits import build_hits
from kb.search.keywords import keyword_terms
from kb.search.outline import OutlineSource, outline_texts
from kb.search.pending import PendingChanges
from kb.search.query_expansion import QueryExpansion
from kb.search.ranking import Candidates, rank
from kb.search.rerank import DeskBoost, SecondStage, annotate
from kb.search.results import (
    Explain,
    LegWeights,
    RrfFusion,
    SearchRequest,
    SearchResult,
    WeightedFusion,
)
from kb.search.synonyms import SynonymStore
from kb.search.text import TextAnalyzer
from kb.search.timings import SearchTimings, StageClock, TimingListener
from kb.search.visible_terms import holder_check, sees_nothing, visible_idf
from kb.search.weighting import FusionWeights, bm25_weight, calibrated_weights
from kb.search.why import MatchExplainer, WhyReport

OVERSAMPLE = 10
MIN_CANDIDATES = 100
MAX_WIDENINGS = 2
#: Results examined for duplicate passages: twice the first page an agent reads.
DUPLICATE_WINDOW = 20


class SearchEngine:
    """Runs searches against the live index generation and the article store. Thread-safe.

    Args:
        analyzer: the text analyzer the index was built with (query terms, snippets).
        embedder: the embedding model the index was built with (query vectors).
        index: gives the live generation's two legs.
        store: article summaries, for filters, successors and results.
        chunks: chunk texts, for snippets and near-duplicates.
        synonyms: the editable synonym groups of query expansion (:mod:`kb.search.query_expansion`); None for none.
        fusion: default fusion of the hybrid mode, ``weighted`` or ``rrf`` (see :mod:`kb.search.fusion`).
        bm25_weight: default BM25 weight of weighted fusion, 0 to 1 (the vector leg gets the rest).
        query_weights: weighted fusion picks the BM25 weight per query from the calibrated weights of
            :mod:`kb.search.weighting` (a request's ``bm25_weight`` still wins); False for the static
            ``bm25_weight``.
        chunk_decay: BM25 leg, weight of an article's second-best chunk, 0 to 1 (see module docstring).
        approximate_vectors: the vector leg searches the HNSW graph (:mod:`kb.search.ann`), not the flat index.
        second_stage: reorders the hybrid mode's fused articles (:mod:`kb.search.rerank`); None for none.
        desk_boost: adds the resolved-ticket vote to the fused scores (:mod:`kb.search.rerank.boost`); None for none.
    """

    def __init__(
        self,
        analyzer: TextAnalyzer,
        embedder: Embedder,
        index: LiveIndex,
        store: ArticleStore,
        chunks: ChunkStore,
        synonyms: SynonymStore | None = None,
        fusion: str = "weighted",
        bm25_weight: float = 0.5,
        query_weights: bool = True,
        chunk_decay: float = CHUNK_DECAY,
        approximate_vectors: bool = False,
        second_stage: SecondStage | None = None,
        desk_boost: DeskBoost | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.embedder = embedder
        self.index = index
        self.store = store
        self.chunks = chunks
        self.synonyms = synonyms
        self.fusion = fusion
        self.bm25_weight = bm25_weight
        self.chunk_decay = chunk_decay
        self.approximate_vectors = approximate_vectors
        self.second_stage = second_stage
        self.desk_boost = desk_boost
        self.fusion_weights: FusionWeights | None = calibrated_weights() if query_weights else None
        #: The model's calibrated bars (see :mod:`kb.search.confidence`).
        self.thresholds: Thresholds = thresholds_for(embedder.name)
        self._explainer = MatchExplainer(analyzer, embedder, index, store, chunks, self.search)
        self._listeners: list[TimingListener] = []
        self._cache = ArticleCache(store, chunks)
        self._pending = PendingChanges(store.database)
        self.expansion = QueryExpansion(analyzer, synonyms, self._cache, chunks)  # synonyms, desk terms, PRF
        self.outlines = OutlineSource(lambda: outline_texts(chunks), embedder, weight=0.0)  # off: kb.search.outline

    @property
    def vector_floor(self) -> float:
        """The vector leg's fusion floor: the cosine unrelated text reaches with this model (calibrated, see
        :mod:`kb.search.confidence`)."""
        return self.thresholds.vector_floor

    def search(self, request: SearchRequest) -> SearchResult:
        """Search (see module docstring).

        Raises:
            QueryTooLongError: the query is longer than 1,000 characters.
            InvalidInputError: unknown mode or limit out of range.
        """
        started = time.perf_counter()
        request.validate()
        query = request.query.strip()
        analysis = self.analyzer.analyze_query(query)
        clock = StageClock(started)
        clock.lap("analyze")
        if not query or not analysis.has_word_chars:
            return SearchResult(
                request.query, request.mode, _ms(started), [], no_keyword_terms=True, low_confidence=True
            )
        gen = self.index.generation
        # before any read: cached rows are never older than the index searched, nor than the database's filters
        version = self._pending.version(gen)  # kb.search.pending: an overlay while changes wait for the index
        terms = keyword_terms(analysis, holder_check(gen.bm25, self._cache, version, request.filters.viewer))
        if not request.explain and sees_nothing(self._cache, version, request.filters.viewer):
            return SearchResult(request.query, request.mode, _ms(started), [], no_keyword_terms=not terms)
        use_bm25 = request.mode in ("hybrid", "bm25") and bool(terms)
        use_vector = request.mode in ("hybrid", "vector")
        own = {t: 1.0 for t in terms}
        weighted_terms = self.expansion.weights(analysis.normalized, terms, gen.bm25, version) if use_bm25 else own
        required = gen.bm25.articles_with_phrases(analysis.phrases) if analysis.phrases else None
        clock.lap("analyze")
        query_vector = None
        if use_vector:
            query_vector = self.embedder.encode_queries([analysis.normalized])[0]
            clock.lap("vector")
        pool = max(MIN_CANDIDATES, request.limit * OVERSAMPLE)
        weight: tuple[float, int | None] | None = None  # (BM25 weight, the query's BM25 terms it came from)
        for _ in range(MAX_WIDENINGS + 1):
            legs: dict[str, Candidates] = {}
            if use_bm25:
                legs["bm25"] = gen.bm25.search_keys(weighted_terms, pool)
                clock.lap("bm25")
            if query_vector is not None:
                legs["vector"] = gen.vectors.search_keys(query_vector, pool, approximate=self.approximate_vectors)
                legs["vector"] = self.outlines.blend(legs["vector"], query_vector, gen.bm25.version)  # outline
                clock.lap("vector")
            if weight is None:
                weight = self._bm25_weight(request, analysis.identifiers, terms)
            found = rank(
                legs,
                request,
                required,
                weight[0],
                version,
                cache=self._cache,
                fusion=self.fusion,
                chunk_decay=self.chunk_decay,
                thresholds=self.thresholds,
            )
            ranked, per_leg, best_chunk = found.ranked, found.per_leg, found.best_chunk
            if len(ranked) >= request.limit or not any(len(hits) >= pool for hits in legs.values()):
                break
            pool *= 4  # filters or long articles left too few articles: look deeper
        staged = None
        if self.second_stage is not None and request.mode == "hybrid" and (request.fusion or self.fusion) != "rrf":
            query_input = (analysis.normalized, query_vector, request.filters.viewer)
            staged = self.second_stage.apply(
                gen.bm25, terms, analysis.identifiers, legs, ranked, per_leg, query_input, request.explain
            )
            ranked = staged.ranked
        hybrid_weighted = request.mode == "hybrid" and (request.fusion or self.fusion) != "rrf" and staged is None
        boost = self.desk_boost and self.desk_boost.apply(  # kb.search.rerank.boost: resolved tickets vote
            ranked, analysis.normalized, query_vector, request.filters.viewer, hybrid_weighted
        )
        ranked = boost.ranked if boost else ranked
        ranked, folded, chunks = self._collapse_duplicates(ranked, best_chunk, request.limit, version)
        hits = build_hits(
            ranked, per_leg, best_chunk, chunks, set(weighted_terms), request.explain, folded, self.analyzer, gen.blocks
        )
        if staged is not None:
            annotate(hits, staged)
        if boost:
            boost.annotate(hits)
        scoring = scored_by(request.mode, request.fusion or self.fusion, request.bm25_weight, staged is not None)
        idf = visible_idf(gen.bm25, self._cache, version, request.filters.viewer, terms) if terms else {}
        scored_hits = boost.unboosted(hits) if boost else hits  # the bar reads the fused score, never the vote
        confidence = top_confidence(
            self.analyzer, terms, scored_hits, chunks, per_leg, idf, self.thresholds, scoring, gen.blocks
        )
        confidence = boost.bounded(hits, confidence) if boost else confidence  # a top put first by a vote: unsure
        explain = None
        if request.explain:
            explain = Explain(
                normalized_query=analysis.normalized,
                terms=list(terms),
                identifiers=list(analysis.identifiers),
                expansions={t: w for t, w in weighted_terms.items() if t not in own},
                phrases=[list(p) for p in analysis.phrases],
                confidence=confidence,
                legs=list(legs),
                candidates=found.candidates,
                fusion=self._fusion_info(request, weight, bool(analysis.identifiers))
                if request.mode == "hybrid"
                else None,
                ranker=staged.info if staged is not None else None,
            )
        clock.lap("rank")
        result = SearchResult(
            request.query,
            request.mode,
            _ms(started),
            hits,
            no_keyword_terms=not terms,
            low_confidence=not confidence.confident,
            explain=explain,
        )
        if self._listeners:
            timings = SearchTimings(request.mode, clock.last - started, clock.stages)
            for listener in self._listeners:
                listener(timings)
        return result

    def subscribe(self, listener: TimingListener) -> None:
        """Call ``listener`` with the :class:`~kb.search.timings.SearchTimings` of every search from now on
        (in the searching thread; it must be quick and must not raise)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: TimingListener) -> None:
        """Stop calling ``listener`` (no error when it is not subscribed)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def why(self, query: str, article_id: int, viewer: Principal | None = None) -> WhyReport:
        """Why ``article_id`` did or did not match ``query`` (see :mod:`kb.search.why`), as ``viewer`` may see it
        (None: the system, which sees every article).

        Raises:
            NotFoundError: the article does not exist.
            QueryTooLongError: the query is too long.
        """
        return self._explainer.explain(query, article_id, viewer)

    def _fusion_info(
        self, request: SearchRequest, weight: tuple[float, int | None] | None, identifiers: bool
    ) -> RrfFusion | WeightedFusion:
        method = request.fusion or self.fusion
        if method == "rrf":
            return RrfFusion("rrf", RRF_K)
        w, query_terms = weight if weight is not None else (self.bm25_weight, None)
        return WeightedFusion(
            "weighted", LegWeights(w, round(1 - w, 6)), LegWeights(0.0, self.vector_floor), query_terms, identifiers
        )

    def _bm25_weight(
        self, request: SearchRequest, identifiers: Sequence[str], terms: Sequence[str]
    ) -> tuple[float, int | None]:
        """The BM25 weight of weighted fusion for this query, and the number of BM25 terms it was chosen from (None
        when the weight is not query-dependent: given by the request, or a static engine weight, or not read at
        all: a single-leg mode or RRF). See :mod:`kb.search.weighting`."""
        if request.bm25_weight is not None:
            return request.bm25_weight, None
        if self.fusion_weights is None or request.mode != "hybrid" or (request.fusion or self.fusion) == "rrf":
            return self.bm25_weight, None
        return bm25_weight(bool(identifiers), len(terms), self.fusion_weights), len(terms)

    def _collapse_duplicates(
        self, ranked: list[tuple[ArticleSummary, float]], best_chunk: dict[int, ChunkKey], limit: int, version: int
    ) -> tuple[list[tuple[ArticleSummary, float]], dict[int, list[ArticleSummary]], dict[ChunkKey, ChunkPassage]]:
        """The first ``limit`` articles, where the first :data:`DUPLICATE_WINDOW` are read for duplicate best
        passages and each duplicate is folded into the better result holding the same passage (see
        :mod:`kb.search.duplicates`). Returns the articles, ``{kept article id: articles folded into it}`` and
        the best chunks of the articles returned."""
        window = ranked[:DUPLICATE_WINDOW]
        chunks = self._cache.passages([best_chunk[a.id] for a, _ in window], version)
        texts = [c.text if (c := chunks.get(best_chunk[a.id])) is not None else None for a, _ in window]
        kept, examined = collapse(window, texts, limit)
        folded = {c.item[0].id: [a for a, _ in c.duplicates] for c in kept if c.duplicates}
        result = ([c.item for c in kept] + ranked[examined:])[:limit]
        missing = [best_chunk[a.id] for a, _ in result if best_chunk[a.id] not in chunks]
        return result, folded, chunks | self._cache.passages(missing, version)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
