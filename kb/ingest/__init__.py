"""Ingestion: sources (Markdown folders, later tickets and reviews) -> validated article content.

Ingestion knows nothing of indexes: it writes through :class:`kb.articles.store.ArticleStore`, whose outbox feeds
the index.
"""
