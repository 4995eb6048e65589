"""Whether an article the caller may see holds a term: the index statistics a caller is allowed to learn.

The BM25 index holds every article, whatever its visibility. Anything derived from it that reaches a caller
(which query terms are searched, document frequencies) must be computed over the articles that caller may see
(GB/T 22239-2019 7.1.4.2 e, 有限制的共享), or it tells them whether a word occurs in text they may not read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from kb.identity.permissions import Permission
from kb.identity.scopes import Principal, article_visible
from kb.search.article_cache import ArticleCache
from kb.search.bm25 import FIELD_BOOSTS, BM25Index

#: Article ids looked up at a time when searching a term's holders for one the viewer may see.
HOLDER_BATCH = 64


def holder_check(bm25: BM25Index, cache: ArticleCache, version: int, viewer: Principal | None) -> Callable[[str], bool]:
    """A ``known(term) -> bool`` for :func:`kb.search.keywords.keyword_terms`: True when an article ``viewer`` may
    see holds ``term`` in its title, headings or body, as of index ``version``.

    For the system itself (``viewer`` None) it is the index's own :meth:`BM25Index.holds` (no article lookup).
    Otherwise it looks up the (few) articles holding the term and checks each one's visibility; it is only called
    for the whole identifiers of a query, which are rare terms.
    """
    if viewer is None:
        return bm25.holds

    def known(term: str) -> bool:
        if not bm25.holds(term):
            return False
        holders = set().union(*bm25.term_articles([term], FIELD_BOOSTS).values())
        return _any_visible(sorted(holders), cache, version, viewer)

    return known


def visible_idf(
    bm25: BM25Index, cache: ArticleCache, version: int, viewer: Principal | None, terms: Sequence[str]
) -> dict[str, float]:
    """The BM25 body idf of each of ``terms`` (:meth:`BM25Index.idf`) for ``viewer``: 0, as for a term the index
    does not hold, when no article the viewer may see holds the term (the confidence's coverage weighs terms by
    it, so a term held only in hidden text would otherwise lower the coverage and flip ``low_confidence``)."""
    idf = bm25.idf(terms)
    if sees_every_article(viewer):
        return idf
    known = holder_check(bm25, cache, version, viewer)
    return {t: value if value > 0 and known(t) else 0.0 for t, value in idf.items()}


def _any_visible(article_ids: Sequence[int], cache: ArticleCache, version: int, viewer: Principal) -> bool:
    """Whether ``viewer`` may see one of ``article_ids`` (looked up :data:`HOLDER_BATCH` at a time, stopping at
    the first batch holding one)."""
    for start in range(0, len(article_ids), HOLDER_BATCH):
        batch: Iterable[int] = article_ids[start : start + HOLDER_BATCH]
        found = cache.summaries(batch, version)
        if any(article_visible(viewer, a.visibility, a.restricted_to or ()) for a in found.values()):
            return True
    return False


def sees_every_article(viewer: Principal | None) -> bool:
    """Whether ``viewer`` may see every article whatever its visibility (the system, or a caller whose roles grant
    both ``article.internal`` and ``article.all``): only such a caller may be shown index-wide statistics."""
    return viewer is None or (viewer.may(Permission.ARTICLE_INTERNAL) and viewer.may(Permission.ARTICLE_ALL))
