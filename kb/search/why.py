"""Why did (or didn't) an article match a query? The why-not debugger behind ``kb why``.

Reports, for one query and one article: the query's analysis (terms, synonym expansions, identifiers), which
query terms the article holds and where (title, headings, body), each term's IDF, the article's rank in the
BM25 leg, its best chunk's cosine and that chunk's rank in the vector leg, its rank in the hybrid answer, and
whether the default filters (status) would hide it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select

from kb.articles.store import ArticleFilter
from kb.models import Chunk
from kb.search.engine import MAX_LIMIT, SearchEngine, SearchRequest

DEEP = 1000


def explain_match(engine: SearchEngine, query: str, article_id: int) -> dict[str, Any]:
    """A JSON-ready explanation (see module docstring).

    Raises:
        NotFoundError: the article does not exist.
        QueryTooLongError: the query is too long.
    """
    SearchRequest(query).validate()
    article = engine.store.get(article_id)
    analyzer = engine.index.analyzer
    analysis = analyzer.analyze_query(query)
    gen = engine.index.generation
    with engine.store.database.session() as session:
        chunks = list(session.scalars(select(Chunk).where(Chunk.article_id == article_id).order_by(Chunk.ord)))
    places = {
        "title": set(analyzer.terms(article.title)),
        "headings": {t for c in chunks for h in c.heading_path for t in analyzer.terms(h)},
        "body": {t for c in chunks for t in analyzer.terms(c.text)},
    }
    idf = gen.bm25.idf(analysis.terms)
    terms = [
        {"term": t, "idf": round(idf.get(t, 0.0), 4), "in": [name for name, have in places.items() if t in have]}
        for t in analysis.terms
    ]
    bm25_hits = gen.bm25.search(dict.fromkeys(analysis.terms, 1.0), DEEP) if analysis.terms else []
    bm25_rank = next(
        (i for i, aid in enumerate(dict.fromkeys(h.article_id for h in bm25_hits), 1) if aid == article_id), None
    )
    query_vector = engine.index.embedder.encode_queries([analysis.normalized])[0]
    best_cosine, best_ord, vector_rank = None, None, None
    embedded = [c for c in chunks if c.embedding]
    if embedded:
        matrix = np.vstack([np.frombuffer(c.embedding or b"", dtype=np.float32) for c in embedded])
        cosines = matrix @ query_vector
        best = int(np.argmax(cosines))
        best_cosine, best_ord = float(cosines[best]), embedded[best].ord
        vector_hits = gen.vectors.search(query_vector, DEEP)
        vector_rank = next(
            (i for i, h in enumerate(vector_hits, 1) if (h.article_id, h.ord) == (article_id, best_ord)), None
        )
    everything = ArticleFilter(statuses=())
    answer = engine.search(SearchRequest(query, limit=MAX_LIMIT, filters=everything))
    hybrid_rank = next((i for i, h in enumerate(answer.results, 1) if h.article_id == article_id), None)
    hidden = [] if ArticleFilter().matches(article) else [f"status is {article.status!r}; search shows published"]
    return {
        "query": query,
        "normalized_query": analysis.normalized,
        "terms": terms,
        "matched_terms": sum(1 for t in terms if t["in"]),
        "identifiers": list(analysis.identifiers),
        "article": {"id": article.id, "title": article.title, "status": article.status, "chunks": len(chunks)},
        "bm25": {"rank": bm25_rank, "note": None if analysis.terms else "the query has no keyword terms"},
        "vector": {"best_chunk": best_ord, "cosine": best_cosine, "chunk_rank": vector_rank},
        "hybrid_rank": hybrid_rank,
        "hidden_by_default_filters": hidden,
    }
