"""What the index stores of an article: its chunk rows, their embedding inputs, and its BM25 documents.

Chunk rows (:func:`chunk_rows`) are the article split by :func:`kb.articles.chunking.chunk_article`, to be
stored in the database with their embeddings. A BM25 document (:func:`chunk_documents`,
:class:`kb.search.bm25.ChunkDocument`) holds, per chunk:

- ``title``: terms of the article title (the same for every chunk of the article);
- ``headings``: terms of the chunk's heading path;
- ``body``: terms of the chunk text;
- ``tags``: terms of the article's tags;
- ``codes``: identifiers (error codes, versions, paths) of the chunk text and the title, and the article's
  declared error codes, normalised, spaces replaced by ``_`` so each is one term.

Field weights are :data:`kb.search.bm25.FIELD_BOOSTS`. Both index and query terms come from one
:class:`kb.search.text.TextAnalyzer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kb.articles.chunking import TokenCounter, chunk_article, embedding_input
from kb.models import Article, Chunk
from kb.search.bm25 import ChunkDocument
from kb.search.text import TextAnalyzer


def chunk_documents(article: Article, chunks: Sequence[Chunk], analyzer: TextAnalyzer) -> list[ChunkDocument]:
    """One BM25 document per chunk of ``article``, in the order of ``chunks`` (see module docstring)."""
    title_tokens = analyzer.tokens(article.title)
    title = [t.text for t in title_tokens]
    tags = [t for tag in article.tags for t in analyzer.terms(tag)]
    article_codes = [analyzer.normalize(c) for c in article.error_codes]
    article_codes += [t.text for t in title_tokens if t.identifier]
    docs = []
    for chunk in chunks:
        headings = [t for h in chunk.heading_path for t in analyzer.terms(h)]
        body_tokens = analyzer.tokens(chunk.text)
        codes = [t.text for t in body_tokens if t.identifier] + article_codes
        docs.append(
            ChunkDocument(
                article_id=article.id,
                ord=chunk.ord,
                title=title,
                headings=headings,
                body=[t.text for t in body_tokens],
                tags=tags,
                codes=[c.replace(" ", "_") for c in codes],
            )
        )
    return docs


def chunk_rows(
    article: Article, model: str, count_tokens: TokenCounter, max_tokens: int, overlap_tokens: int
) -> list[Chunk]:
    """``article`` split into chunks of at most ``max_tokens`` model tokens (by ``count_tokens``), pieces of a long
    section overlapping by about ``overlap_tokens``, as unsaved rows for ``model`` without embeddings yet."""
    pieces = chunk_article(
        article.title, article.body, count_tokens, max_tokens, overlap_tokens, summary=article.summary
    )
    return [
        Chunk(
            article_id=article.id,
            ord=p.ord,
            article_version=article.version,
            heading_path=list(p.heading_path),
            text=p.text,
            token_count=p.token_count,
            model=model,
            embedding=None,
        )
        for p in pieces
    ]


def embedding_texts(chunks: Sequence[Chunk], articles: Mapping[int, Article], analyzer: TextAnalyzer) -> list[str]:
    """The passage each chunk is encoded from: its article's title, heading path and normalised text
    (:func:`kb.articles.chunking.embedding_input`); ``articles`` must hold every chunk's article."""
    return [embedding_input(articles[c.article_id].title, c.heading_path, analyzer.normalize(c.text)) for c in chunks]
