"""Which articles changed in the BM25 index from one of its versions to a later one, so that what was read for the
earlier version can be kept for the rest.

Every commit of the BM25 leg (an applied outbox batch, or another process's batch followed) gives the index a new
:attr:`kb.search.bm25.BM25Index.version`, and the in-memory caches of search (:mod:`kb.search.article_cache`) were
emptied at each: with 40 writers (a commit every few hundred ms) each search after a commit read its articles'
summaries and passages again, about 75 ms of serving CPU per commit for the 15 queries of
``bench/concurrent_writes.py`` against 5.7 ms for following the commit itself (``bench/results/concurrent-writes.md``,
session 9). Every change of an article reaches search through the outbox and re-indexes all chunks of that article
in the BM25 leg (its documents are deleted and added again, :meth:`kb.search.bm25.BM25Index.replace_articles`), so
the articles whose documents are new or gone between two searchers are a superset of the articles whose rows
changed: the rest of the cached rows stay valid.

:func:`record` is called by the BM25 index when it installs a searcher for a new version (with the searcher and its
view already built, so every read made under that version is later than the index state it names);
:func:`changed_between` answers for a pair of versions, or None when it cannot tell (a version it never recorded,
one recorded without a predecessor, or a chain longer than :data:`MAX_CHAIN`): then the caller drops everything.
Versions are unique in the process (one counter, :func:`new_version`, for every BM25 index and every overlay), so
one registry serves all generations.

An *overlay* (:func:`overlay`) is a version of search's caches, not of the index: the index version it is based on,
with the articles the database has changed since and the index has not applied yet (:mod:`kb.search.pending`).
Between an overlay and any version, the changed articles are the overlay's own plus those between its base and that
version (each side's, when both are overlays).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

#: Versions remembered (the most recent ones; older ones answer None).
MAX_VERSIONS = 256
#: Longest chain of versions :func:`changed_between` walks (a reader that far behind starts again).
MAX_CHAIN = 64

_lock = threading.Lock()
#: version -> (the version it replaced, the ids of the articles whose BM25 documents changed between them)
_lineage: OrderedDict[int, tuple[int, frozenset[int]]] = OrderedDict()
#: overlay version -> (the index version it is based on, the articles it reads from the database instead)
_overlays: OrderedDict[int, tuple[int, frozenset[int]]] = OrderedDict()
_versions = itertools.count(1)


def new_version() -> int:
    """A version number not given out before in this process (thread-safe: ``itertools.count`` is atomic under the
    GIL)."""
    return next(_versions)


def overlay(base: int, changed: frozenset[int]) -> int:
    """A new version of search's caches: index version ``base`` with the articles ``changed`` in the database since
    (module docstring)."""
    version = new_version()
    with _lock:
        _overlays[version] = (base, changed)
        while len(_overlays) > MAX_VERSIONS:
            _overlays.popitem(last=False)
    return version


def overlay_of(version: int) -> tuple[int, frozenset[int]] | None:
    """``(base, changed)`` of overlay ``version`` (:func:`overlay`), None when it is none (or forgotten)."""
    with _lock:
        return _overlays.get(version)


def record(version: int, previous: int, changed: frozenset[int]) -> None:
    """Remember that ``version`` follows ``previous`` and that only the articles ``changed`` differ between them."""
    with _lock:
        _lineage[version] = (previous, changed)
        while len(_lineage) > MAX_VERSIONS:
            _lineage.popitem(last=False)


def changed_between(old: int, new: int) -> frozenset[int] | None:
    """The ids of the articles whose BM25 documents changed from version ``old`` to the later version ``new`` (empty
    when ``old == new``), either or both of them possibly an :func:`overlay`; None when unknown (module
    docstring)."""
    if old == new:
        return frozenset()
    changed: set[int] = set()
    with _lock:
        if old in _overlays:  # from an overlay: its articles, then from its base
            old, articles = _overlays[old]
            changed |= articles
        if new in _overlays:  # to an overlay: its base's chain, and its articles
            new, articles = _overlays[new]
            changed |= articles
        if old == new:
            return frozenset(changed)
        version = new
        for _ in range(MAX_CHAIN):
            step = _lineage.get(version)
            if step is None:
                return None
            version, articles = step
            changed |= articles
            if version == old:
                return frozenset(changed)
    return None
