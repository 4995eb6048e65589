"""Hybrid search: both legs, fusion, chunk -> article grouping, filters, snippets and explanations.

1. The query is checked (length), normalised and analysed once.
2. The BM25 leg (when the query has keyword terms) and the vector leg each return chunk candidates,
   oversampled (:data:`OVERSAMPLE` x the limit, at least :data:`MIN_CANDIDATES`).
3. Each leg's chunks are grouped to articles (an article's rank in a leg is that of its best chunk).
4. Filters (status, kind, service, tags) are applied to the articles, from the database, before the limit;
   when filters leave too few, the candidate pools are widened and the search repeated.
5. Articles are fused (mode ``hybrid``: weighted score fusion by default, RRF on request, see
   :mod:`kb.search.fusion`) or ranked by one leg (``bm25``, ``vector``); a retired article's matches count for
   its successor; near-duplicates are moved below the first page.
6. The snippet is the article's best chunk (by chunk-level RRF), with query terms highlighted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from kb.articles.chunks import ChunkKey, ChunkPassage, ChunkStore
from kb.articles.store import ArticleFilter, ArticleStore, ArticleSummary
from kb.search.confidence import coverage, is_confident, thresholds_for
from kb.search.embedders.base import Embedder
from kb.search.fusion import RRF_K, order, rrf, weighted
from kb.search.generation import Legs, LiveIndex
from kb.search.results import (
    ConfidenceSignals,
    Explain,
    LegScore,
    LegWeights,
    RrfFusion,
    SearchHit,
    SearchRequest,
    SearchResult,
    WeightedFusion,
    hit_explain,
)
from kb.search.snippets import highlight
from kb.search.synonyms import EXPANSION_WEIGHT, SynonymStore
from kb.search.text import TextAnalyzer
from kb.search.why import MatchExplainer, WhyReport

OVERSAMPLE = 10
MIN_CANDIDATES = 100
MAX_WIDENINGS = 2
DUPLICATE_JACCARD = 0.9
DUPLICATE_MIN_CHARS = 40
#: Results kept free of near-duplicates: the first page an agent reads.
DUPLICATE_PAGE = 10
#: Longest ``superseded_by`` chain followed from a retired article to the article that replaces it.
MAX_SUCCESSOR_HOPS = 5


class SearchEngine:
    """Runs searches against the live index generation and the article store. Thread-safe.

    Args:
        analyzer: the text analyzer the index was built with (query terms, snippets).
        embedder: the embedding model the index was built with (query vectors).
        index: gives the live generation's two legs.
        store: article summaries, for filters, successors and results.
        chunks: chunk texts, for snippets and near-duplicates.
        synonyms: query expansion; None for none.
        fusion: default fusion of the hybrid mode, ``weighted`` or ``rrf`` (see :mod:`kb.search.fusion`).
        bm25_weight: default BM25 weight of weighted fusion, 0 to 1 (the vector leg gets the rest).
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
    ) -> None:
        self.analyzer = analyzer
        self.embedder = embedder
        self.index = index
        self.store = store
        self.chunks = chunks
        self.synonyms = synonyms
        self.fusion = fusion
        self.bm25_weight = bm25_weight
        self._explainer = MatchExplainer(analyzer, embedder, index, store, chunks, self.search)

    @property
    def vector_floor(self) -> float:
        """The vector leg's fusion floor: the cosine unrelated text reaches with this model (calibrated, see
        :mod:`kb.search.confidence`)."""
        return thresholds_for(self.embedder.name).vector_floor

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
        if not query or not analysis.has_word_chars:
            return SearchResult(
                request.query, request.mode, _ms(started), [], no_keyword_terms=True, low_confidence=True
            )
        use_bm25 = request.mode in ("hybrid", "bm25") and bool(analysis.terms)
        use_vector = request.mode in ("hybrid", "vector")
        gen = self.index.generation
        query_vector = None
        if use_vector:
            query_vector = self.embedder.encode_queries([analysis.normalized])[0]

        expansions = (
            self.synonyms.expander().expand(analysis.normalized, set(analysis.terms))
            if self.synonyms is not None and use_bm25
            else []
        )
        weighted_terms = {t: 1.0 for t in analysis.terms} | {t: EXPANSION_WEIGHT for t in expansions}
        required = gen.bm25.articles_with_phrases(analysis.phrases) if analysis.phrases else None
        pool = max(MIN_CANDIDATES, request.limit * OVERSAMPLE)
        for _ in range(MAX_WIDENINGS + 1):
            bm25_hits = gen.bm25.search(weighted_terms, pool) if use_bm25 else []
            vector_hits = gen.vectors.search(query_vector, pool) if query_vector is not None else []
            legs: dict[str, list[tuple[ChunkKey, float]]] = {}
            if use_bm25:
                legs["bm25"] = [((h.article_id, h.ord), h.score) for h in bm25_hits]
            if use_vector:
                legs["vector"] = [((h.article_id, h.ord), h.score) for h in vector_hits]
            ranked, per_leg, best_chunk = self._rank(legs, request, required)
            truncated = len(bm25_hits) >= pool or len(vector_hits) >= pool
            if len(ranked) >= request.limit or not truncated:
                break
            pool *= 4  # filters or long articles left too few articles: look deeper
        ranked, chunks = self._collapse_duplicates(ranked, best_chunk, request.limit)
        hits = self._hits(ranked, per_leg, best_chunk, chunks, set(weighted_terms), request)
        confidence = self._confidence(analysis.terms, hits, chunks, per_leg, gen)
        explain = None
        if request.explain:
            explain = Explain(
                normalized_query=analysis.normalized,
                terms=list(analysis.terms),
                identifiers=list(analysis.identifiers),
                expansions={t: EXPANSION_WEIGHT for t in expansions},
                phrases=[list(p) for p in analysis.phrases],
                confidence=confidence,
                legs=list(legs),
                candidates={leg: len(hits_) for leg, hits_ in legs.items()},
                fusion=self._fusion_info(request) if request.mode == "hybrid" else None,
            )
        return SearchResult(
            request.query,
            request.mode,
            _ms(started),
            hits,
            no_keyword_terms=not analysis.terms,
            low_confidence=not confidence.confident,
            explain=explain,
        )

    def why(self, query: str, article_id: int) -> WhyReport:
        """Why ``article_id`` did or did not match ``query`` (see :mod:`kb.search.why`).

        Raises:
            NotFoundError: the article does not exist.
            QueryTooLongError: the query is too long.
        """
        return self._explainer.explain(query, article_id)

    def _confidence(
        self,
        terms: Sequence[str],
        hits: list[SearchHit],
        chunks: dict[ChunkKey, ChunkPassage],
        per_leg: dict[int, dict[str, LegScore]],
        gen: Legs,
    ) -> ConfidenceSignals:
        limits = thresholds_for(self.embedder.name)
        if not hits:
            return ConfidenceSignals(limits.coverage_min, limits.cosine_min, False, 0.0, None)
        top = hits[0]
        chunk = next((c for c in chunks.values() if c.article_id == top.article_id), None)
        text = " ".join([top.title, *top.heading_path, chunk.text if chunk is not None else ""])
        cov = coverage(list(terms), set(self.analyzer.terms(text)), gen.bm25.idf(terms)) if terms else 0.0
        vector = per_leg.get(top.article_id, {}).get("vector")
        cosine = vector.score if vector is not None else None
        confident = is_confident(cov, cosine, limits)
        return ConfidenceSignals(limits.coverage_min, limits.cosine_min, confident, round(cov, 4), cosine)

    def _fusion_info(self, request: SearchRequest) -> RrfFusion | WeightedFusion:
        method = request.fusion or self.fusion
        if method == "rrf":
            return RrfFusion("rrf", RRF_K)
        w = self.bm25_weight if request.bm25_weight is None else request.bm25_weight
        return WeightedFusion("weighted", LegWeights(w, round(1 - w, 6)), LegWeights(0.0, self.vector_floor))

    def _rank(
        self, legs: dict[str, list[tuple[ChunkKey, float]]], request: SearchRequest, required: set[int] | None
    ) -> tuple[list[tuple[ArticleSummary, float]], dict[int, dict[str, LegScore]], dict[int, ChunkKey]]:
        candidate_ids = {key[0] for hits in legs.values() for key, _ in hits}
        articles = self.store.summaries(candidate_ids)
        successors = self._successors(articles, request.filters)
        if successors:  # a retired article's matches count for the article that supersedes it
            legs = {
                leg: [((successors[k[0]].id, 0) if k[0] in successors else k, score) for k, score in hits]
                for leg, hits in legs.items()
            }
            articles.update({s.id: s for s in successors.values()})
        allowed = {
            aid for aid, a in articles.items() if request.filters.matches(a) and (required is None or aid in required)
        }
        per_leg: dict[int, dict[str, LegScore]] = {}
        article_rankings: dict[str, list[int]] = {}
        for leg, hits in legs.items():
            ranking: list[int] = []
            for (article_id, _), score in hits:
                if article_id in allowed and leg not in per_leg.get(article_id, {}):
                    ranking.append(article_id)
                    per_leg.setdefault(article_id, {})[leg] = LegScore(len(ranking), score)
            article_rankings[leg] = ranking
        chunk_scores = rrf({leg: [key for key, _ in hits if key[0] in allowed] for leg, hits in legs.items()})
        best_chunk: dict[int, ChunkKey] = {}
        for key in order(chunk_scores):
            best_chunk.setdefault(key[0], key)
        if request.mode == "hybrid" and (request.fusion or self.fusion) == "rrf":
            scores = rrf(article_rankings)
        elif request.mode == "hybrid":
            w = self.bm25_weight if request.bm25_weight is None else request.bm25_weight
            raw = {leg: {aid: ls[leg].score for aid, ls in per_leg.items() if leg in ls} for leg in legs}
            scores, parts = weighted(raw, {"bm25": w, "vector": 1.0 - w}, {"vector": self.vector_floor})
            for aid, leg_parts in parts.items():
                for leg, norm in leg_parts.items():
                    per_leg[aid][leg] = LegScore(per_leg[aid][leg].rank, per_leg[aid][leg].score, norm)
        else:
            leg = request.mode
            scores = {aid: ls[leg].score for aid, ls in per_leg.items() if leg in ls}
        return [(articles[aid], scores[aid]) for aid in order(scores)], per_leg, best_chunk

    def _successors(self, articles: dict[int, ArticleSummary], flt: ArticleFilter) -> dict[int, ArticleSummary]:
        """For each retired candidate the filter excludes and that names a successor: the end of its
        ``superseded_by`` chain (at most :data:`MAX_SUCCESSOR_HOPS` hops), when that article passes the filter."""
        found: dict[int, ArticleSummary] = {}
        for aid, article in articles.items():
            current = article
            for _ in range(MAX_SUCCESSOR_HOPS):
                if flt.matches(current) or current.status != "retired" or current.superseded_by is None:
                    break
                nxt = articles.get(current.superseded_by) or self.store.summaries([current.superseded_by]).get(
                    current.superseded_by
                )
                if nxt is None:
                    break
                current = nxt
            if current.id != aid and flt.matches(current) and not flt.matches(article):
                found[aid] = current
        return found

    def _hits(
        self,
        ranked: Sequence[tuple[ArticleSummary, float]],
        per_leg: dict[int, dict[str, LegScore]],
        best_chunk: dict[int, ChunkKey],
        chunks: dict[ChunkKey, ChunkPassage],
        terms: set[str],
        request: SearchRequest,
    ) -> list[SearchHit]:
        hits = []
        for article, score in ranked:
            chunk = chunks.get(best_chunk[article.id])
            text = chunk.text if chunk is not None else article.summary
            hits.append(
                SearchHit(
                    article_id=article.id,
                    title=article.title,
                    source_path=article.source_path,
                    score=score,
                    snippet=highlight(text, terms, self.analyzer),
                    heading_path=list(chunk.heading_path) if chunk is not None else [],
                    version=article.version,
                    kind=article.kind,
                    service=article.service,
                    status=article.status,
                    explain=(
                        hit_explain(per_leg.get(article.id, {}), best_chunk[article.id][1]) if request.explain else None
                    ),
                )
            )
        return hits

    def _collapse_duplicates(
        self, ranked: list[tuple[ArticleSummary, float]], best_chunk: dict[int, ChunkKey], limit: int
    ) -> tuple[list[tuple[ArticleSummary, float]], dict[ChunkKey, ChunkPassage]]:
        """The first ``limit`` articles, where an article whose best chunk nearly repeats a better one's (Jaccard
        similarity of character 4-gram sets >= :data:`DUPLICATE_JACCARD`) is moved down, out of the first
        :data:`DUPLICATE_PAGE` results, so one passage copied into several articles does not fill the page an
        agent reads; it is not dropped (a longer list still has it, right after that page). Returns the
        articles and the best chunks of those kept."""
        page = min(limit, DUPLICATE_PAGE)
        window = ranked[: 2 * DUPLICATE_PAGE]  # at most this many best chunks are read to find duplicates
        chunks = self.chunks.passages([best_chunk[a.id] for a, _ in window])
        kept: list[tuple[ArticleSummary, float]] = []
        moved: list[tuple[ArticleSummary, float]] = []
        seen: list[set[str]] = []
        examined = 0
        for article, score in window:
            if len(kept) == page:
                break
            examined += 1
            chunk = chunks.get(best_chunk[article.id])
            # Short chunks (a heading, one line) say too little to call two articles duplicates.
            grams = _shingles(chunk.text) if chunk is not None and len(chunk.text) >= DUPLICATE_MIN_CHARS else set()
            if grams and any(len(grams & other) >= DUPLICATE_JACCARD * len(grams | other) for other in seen):
                moved.append((article, score))
                continue
            kept.append((article, score))
            seen.append(grams)
        result = (kept + moved + ranked[examined:])[:limit]
        missing = [best_chunk[a.id] for a, _ in result if best_chunk[a.id] not in chunks]
        return result, chunks | self.chunks.passages(missing)


def _shingles(text: str, size: int = 4) -> set[str]:
    compact = "".join(text.split()).lower()
    return {compact[i : i + size] for i in range(max(1, len(compact) - size + 1))} if compact else set()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
