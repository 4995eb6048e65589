"""The results of a search as the caller sees them: one :class:`~kb.search.results.SearchHit` per article."""

from __future__ import annotations

from collections.abc import Sequence

from kb.articles.chunks import ChunkKey, ChunkPassage
from kb.articles.filters import ArticleSummary
from kb.search.results import DuplicateSource, LegScore, SearchHit, hit_explain
from kb.search.snippets import highlight
from kb.search.term_tokens import StoredBlocks
from kb.search.text import TextAnalyzer


def build_hits(
    ranked: Sequence[tuple[ArticleSummary, float]],
    per_leg: dict[int, dict[str, LegScore]],
    best_chunk: dict[int, ChunkKey],
    chunks: dict[ChunkKey, ChunkPassage],
    terms: set[str],
    explain: bool,
    folded: dict[int, list[ArticleSummary]],
    analyzer: TextAnalyzer,
    stored: StoredBlocks | None = None,
) -> list[SearchHit]:
    """A hit per ranked ``(article, score)``, in order: its best chunk (``best_chunk``, text in ``chunks``; the
    article's summary when the chunk is gone) as the snippet with ``terms`` highlighted (blocks' tokens read from
    ``stored`` when it holds them), its places in each leg when ``explain``, and the articles ``folded`` into it
    as duplicates."""
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
                snippet=highlight(text, terms, analyzer, stored=stored),
                heading_path=list(chunk.heading_path) if chunk is not None else [],
                version=article.version,
                kind=article.kind,
                service=article.service,
                status=article.status,
                explain=hit_explain(per_leg.get(article.id, {}), best_chunk[article.id][1]) if explain else None,
                duplicates=[DuplicateSource(d.id, d.title, d.source_path) for d in folded.get(article.id, [])],
            )
        )
    return hits
