"""ArticleIndexer: brings both legs of an index generation in line with the database for a batch of articles.

The articles are re-chunked (or their stored chunks reused when the article version and model match), new chunks
are encoded and stored in the database, then in the BM25 index all old chunks of each article are deleted and the
new ones added in one commit, then the same in the vector index; the tokens of the chunks' text blocks are stored
for search's snippets (:mod:`kb.search.block_store`). Idempotent: the caller (:class:`IndexManager
<kb.search.index.IndexManager>`, under ``writer.lock``) records the batch as applied only after this returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy.exc import IntegrityError

from kb.articles.chunks import ChunkStore
from kb.articles.reader import ArticleReader
from kb.models import Article, Chunk
from kb.search.block_store import chunk_blocks
from kb.search.bm25 import ChunkDocument
from kb.search.documents import chunk_documents, chunk_rows, embedding_texts
from kb.search.embedders.base import Embedder, decode_vectors
from kb.search.generation import Generation
from kb.search.text import TextAnalyzer
from kb.search.vectors import vector_id


class ArticleIndexer:
    """Indexes batches of articles into a generation (module docstring). Not thread-safe: one writer at a time.

    Args:
        articles: reads the articles to index.
        chunks: the stored chunks (reused when the article version and model match) and their embeddings.
        analyzer: the text analyzer (index terms).
        embedder: the embedding model (passage vectors).
        max_tokens: largest chunk embedding input, model tokens.
        overlap_tokens: overlap between the pieces of a split section, model tokens.
    """

    def __init__(
        self,
        articles: ArticleReader,
        chunks: ChunkStore,
        analyzer: TextAnalyzer,
        embedder: Embedder,
        max_tokens: int,
        overlap_tokens: int,
    ) -> None:
        self._articles = articles
        self._chunks = chunks
        self._analyzer = analyzer
        self._embedder = embedder
        self._max_tokens = max_tokens
        self._overlap_tokens = overlap_tokens

    def index_articles(self, gen: Generation, article_ids: Sequence[int], *, replace: bool) -> None:
        """Bring both legs of ``gen`` in line with the database for ``article_ids`` (``replace``: remove what the
        legs held of them first; False for a new generation being built)."""
        articles = self._articles.by_ids(article_ids)
        stored = self._chunks.of_articles(article_ids)
        documents: list[ChunkDocument] = []
        fresh: dict[int, list[Chunk]] = {}
        for article_id in article_ids:
            article = articles.get(article_id)
            if article is None:
                continue
            chunks = stored.get(article_id, [])
            if not self._reusable(article, chunks):
                chunks = self._chunk(article)
                fresh[article_id] = chunks
            documents.extend(chunk_documents(article, chunks, self._analyzer))
        self._encode_missing([c for cs in fresh.values() for c in cs], articles)
        gone = [aid for aid in article_ids if aid not in articles]
        try:
            self._chunks.replace(gone + list(fresh), [c for cs in fresh.values() for c in cs])
        except IntegrityError:
            fresh = self._stored_meanwhile(fresh, articles)
            self._chunks.replace(gone, [])
        ids: list[int] = []
        blobs: list[bytes | None] = []
        blocks: list[str] = []
        for article_id in article_ids:
            if article_id not in articles:
                continue
            for chunk in fresh.get(article_id) or stored.get(article_id, []):
                ids.append(vector_id(chunk.article_id, chunk.ord))
                blobs.append(chunk.embedding)
                blocks += chunk_blocks(articles[article_id].title, chunk.heading_path, chunk.text, self._analyzer)
        gen.blocks.add(blocks, self._analyzer)  # before the BM25 commit: a search that finds a chunk finds its blocks
        gen.bm25.replace_articles(documents, article_ids if replace else ())
        vectors = decode_vectors(blobs, gen.manifest.dimension)  # (0, dimension) when none
        gen.vectors.replace_articles(article_ids if replace else (), np.asarray(ids, dtype=np.int64), vectors)

    def _stored_meanwhile(self, fresh: dict[int, list[Chunk]], articles: dict[int, Article]) -> dict[int, list[Chunk]]:
        """The chunks another process (a second replica's applier) stored for the articles of ``fresh`` between
        this one's read and write: the same article versions and model, so the same chunks (the chunker and the
        model are deterministic); they replace this process's copies.

        Raises:
            IntegrityError: what is stored now is not reusable (the conflict was something else).
        """
        again = self._chunks.of_articles(list(fresh))
        if not all(self._reusable(articles[aid], again.get(aid, [])) for aid in fresh):
            raise IntegrityError("chunks", None, ValueError("chunk rows conflict with rows of another version"))
        return {aid: again[aid] for aid in fresh}

    def _reusable(self, article: Article, chunks: list[Chunk]) -> bool:
        return bool(chunks) and all(
            c.article_version == article.version and c.model == self._embedder.name and c.embedding is not None
            for c in chunks
        )

    def _chunk(self, article: Article) -> list[Chunk]:
        count = self._embedder.count_tokens
        return chunk_rows(article, self._embedder.name, count, self._max_tokens, self._overlap_tokens)

    def _encode_missing(self, chunks: list[Chunk], articles: dict[int, Article]) -> None:
        if not chunks:
            return
        matrix = self._embedder.encode_passages(embedding_texts(chunks, articles, self._analyzer))
        for chunk, row in zip(chunks, matrix, strict=True):
            chunk.embedding = row.astype(np.float32).tobytes()
