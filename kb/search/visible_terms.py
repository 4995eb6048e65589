"""Whether an article the caller may see holds a term: the index statistics a caller is allowed to learn.

The BM25 index holds every article, whatever its visibility. Anything derived from it that reaches a caller
(which query terms are searched, document frequencies) must be computed over the articles that caller may see
(GB/T 22239-2019 7.1.4.2 e, 有限制的共享), or it tells them whether a word occurs in text they may not read.

What a caller may see depends only on its :func:`visibility_class` (whether it may read internal articles, all
restricted ones, and its roles and groups), so the articles a class may see are computed once per index version
(:func:`visible_articles`: every article's visibility read in one statement, a boolean per article id) and a
term's check is a look-up of its holders in that array. Before (session 7), each query looked its terms' holders up
one article summary at a time and, for a caller who may see none of them, went through all of them:
0.6-0.8 ms per warm BM25 query (``bench/results/perf-session8.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from kb.identity.permissions import Permission
from kb.identity.scopes import UNPUBLISHED, Principal, article_visible
from kb.search import lineage
from kb.search.article_cache import ArticleCache
from kb.search.bm25 import BM25Index

#: Most terms whose answer is remembered per index version and visibility class.
MAX_TERMS = 50_000

#: A caller's visibility class: (may read internal articles, may read every restricted one, roles and groups that
#: open restricted articles; empty when the second is True, may read drafts and reviews in progress).
VisibilityClass = tuple[bool, bool, frozenset[str], bool]


def visibility_class(viewer: Principal) -> VisibilityClass:
    """What :func:`kb.identity.scopes.article_visible` and the editors-only rule of unpublished articles
    (:data:`kb.identity.scopes.UNPUBLISHED`) read of ``viewer``: two callers of one class see the same articles."""
    every_restricted = viewer.may(Permission.ARTICLE_ALL)
    openers = frozenset() if every_restricted else frozenset(viewer.roles) | frozenset(viewer.groups)
    return viewer.may(Permission.ARTICLE_INTERNAL), every_restricted, openers, viewer.is_editor


def visible_articles(cache: ArticleCache, version: int, viewer: Principal) -> npt.NDArray[np.bool_]:
    """``mask[article_id]`` is True when the article exists as of index ``version`` and ``viewer`` may see it: its
    visibility lets them, and it is not a draft or in review unless they are an editor (found by session 9's
    outside tester: a requester learnt which identifiers public drafts hold). Ids beyond the array are articles
    that do not exist; computed once per version and visibility class (for an overlay of :mod:`kb.search.pending`, the
    array of its base version with the overlay's articles read again: one statement for those, not all articles)."""
    editor = viewer.is_editor
    overlay = lineage.overlay_of(version)

    def compute() -> npt.NDArray[np.bool_]:
        rows = cache.visibility(version)
        mask = np.zeros(max((row[0] for row in rows), default=-1) + 1, dtype=bool)
        for article_id, visibility, restricted_to, status in rows:
            mask[article_id] = article_visible(viewer, visibility, restricted_to) and (
                editor or status not in UNPUBLISHED
            )
        return mask

    def patch() -> npt.NDArray[np.bool_]:  # an overlay: its base's array, its own articles read again
        assert overlay is not None
        base, changed = overlay
        below = visible_articles(cache, base, viewer)
        fresh = cache.summaries(changed, version)
        mask = np.zeros(max(len(below), max(changed, default=-1) + 1), dtype=bool)
        mask[: len(below)] = below
        for article_id in changed:
            row = fresh.get(article_id)  # None: deleted
            mask[article_id] = row is not None and (
                article_visible(viewer, row.visibility, row.restricted_to or ())
                and (editor or row.status not in UNPUBLISHED)
            )
        return mask

    return cache.derived(("visible", visibility_class(viewer)), version, compute if overlay is None else patch)


def holder_check(bm25: BM25Index, cache: ArticleCache, version: int, viewer: Principal | None) -> Callable[[str], bool]:
    """A ``known(term) -> bool`` for :func:`kb.search.keywords.keyword_terms`: True when an article ``viewer`` may
    see holds ``term`` in its title, headings or body (the fields of :data:`kb.search.bm25.FIELD_BOOSTS`), as of
    index ``version``.

    For the system itself (``viewer`` None) it is the index's own :meth:`BM25Index.holds` (no article lookup);
    otherwise the term's holders (:meth:`BM25Index.term_holders`) looked up in :func:`visible_articles`, each
    term's answer remembered per version and visibility class (at most :data:`MAX_TERMS`).
    """
    if viewer is None:
        return bm25.holds

    seen: dict[str, bool] = cache.derived(("visible terms", visibility_class(viewer)), version, dict)

    def known(term: str) -> bool:
        found = seen.get(term)
        if found is None:
            found = bm25.holds(term)
            if found:
                mask = visible_articles(cache, version, viewer)
                holders = bm25.term_holders(term)
                found = bool(mask[holders[holders < len(mask)]].any())
            if len(seen) >= MAX_TERMS:
                seen.clear()
            seen[term] = found
        return found

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


def sees_every_article(viewer: Principal | None) -> bool:
    """Whether ``viewer`` may see every article whatever its visibility and status (the system, or an editor whose
    roles grant both ``article.internal`` and ``article.all``): only such a caller may be shown index-wide
    statistics."""
    return viewer is None or (
        viewer.may(Permission.ARTICLE_INTERNAL) and viewer.may(Permission.ARTICLE_ALL) and viewer.is_editor
    )


def sees_nothing(cache: ArticleCache, version: int, viewer: Principal | None) -> bool:
    """Whether ``viewer`` may see no article at all as of index ``version`` (a requester or a ``search``-only service
    account while every article is internal): then every search of theirs answers no result, and the engine skips
    the legs (each would have widened its pools twice looking for a visible candidate). One look at the
    :func:`visible_articles` array, computed once per version and visibility class."""
    return not sees_every_article(viewer) and viewer is not None and not visible_articles(cache, version, viewer).any()
