"""Searches running in threads while writes are applied (issue 10, session 11): every answer is one whole commit.

The BM25 leg builds the next commit's searcher without the search lock and swaps it in
(:meth:`kb.search.bm25.BM25Index.reopen`), over copy-on-write segment views; the vector leg replaces an article's
vectors under one hold of its write lock (:meth:`kb.search.vectors.VectorIndex.replace_articles`).
Each version of an article here has a different number of chunks, all holding the word ``common``, so an answer
that mixed two commits shows it: an ``(article, ord)`` twice (old and new chunks both live), an article missing
(old deleted, new not yet added), or ords with a gap. Articles deleted by a commit that returned before a search
started must not be in its answer. Both the writing index and a second one following the same folder (the serving
process of ``kb serve`` with its applier in another process) are searched.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from kb.search.bm25 import BM25Index, ChunkDocument
from kb.search.vectors import VectorIndex, vector_id

KEPT = range(30)  # articles that always exist (changed, never deleted)
DELETED = range(100, 112)  # articles deleted one by one during the run


def _chunks(article_id: int, version: int) -> list[ChunkDocument]:
    """Version ``version`` of an article: ``version % 3 + 1`` chunks (so consecutive versions differ in count)."""
    return [
        ChunkDocument(article_id, o, [f"t{article_id}"], [], ["common", f"a{article_id}v{version}"], [], [])
        for o in range(version % 3 + 1)
    ]


def _check(hits: list[tuple[tuple[int, int], float]], gone: set[int], where: str) -> None:
    keys = [key for key, _ in hits]
    assert len(keys) == len(set(keys)), f"{where}: a chunk of two commits at once"
    ords: dict[int, set[int]] = defaultdict(set)
    for article_id, ord_ in keys:
        ords[article_id].add(ord_)
    assert set(KEPT) <= set(ords), f"{where}: missing {sorted(set(KEPT) - set(ords))}"
    assert not (set(ords) & gone), f"{where}: deleted articles returned {sorted(set(ords) & gone)}"
    for article_id, found in ords.items():
        assert found == set(range(len(found))) and len(found) <= 3, f"{where}: article {article_id} ords {found}"


def test_bm25_searches_during_writes_see_whole_commits(tmp_path: Path) -> None:
    writer = BM25Index.create(tmp_path / "bm25")
    writer.replace_articles([d for a in [*KEPT, *DELETED] for d in _chunks(a, 0)], ())
    follower = BM25Index.open(tmp_path / "bm25")
    versions = dict.fromkeys(KEPT, 0)
    gone: set[int] = set()  # deleted by a commit that has returned (and been followed)
    done = threading.Event()
    errors: list[BaseException] = []
    searches = [0, 0]
    started = threading.Barrier(5)  # the writer and the 4 searchers: no commit before every search runs

    def write() -> None:
        rng = random.Random(11)
        try:
            started.wait(timeout=60)
            for round_ in range(60):
                changed = rng.sample(list(KEPT), 5)
                for a in changed:
                    versions[a] += 1
                deleted = [DELETED[round_ // 5]] if round_ % 5 == 4 else []
                writer.replace_articles([d for a in changed for d in _chunks(a, versions[a])], changed + deleted)
                follower.reopen()  # what Generation.catch_up does in a process that follows the folder
                gone.update(deleted)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            done.set()

    def search(index: BM25Index, slot: int) -> None:
        try:
            started.wait(timeout=60)
            while not done.is_set():
                before = set(gone)
                _check(index.search_keys({"common": 1.0}, 10_000), before, f"search {slot}")
                assert index.holds("common")
                searches[slot % 2] += 1
        except BaseException as exc:
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=write)]
    threads += [threading.Thread(target=search, args=(writer if i % 2 else follower, i)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors[0]
        assert min(searches) > 20  # the searches ran beside the commits, on both indexes
        final = set(gone)
        assert final == set(DELETED)
        for index in (writer, follower):
            _check(index.search_keys({"common": 1.0}, 10_000), final, "after")
            for a in KEPT:  # and each article is at its last version
                assert {k for k, _ in index.search_keys({f"a{a}v{versions[a]}": 1.0}, 10)} == {
                    (a, o) for o in range(versions[a] % 3 + 1)
                }
    finally:
        follower.close()
        writer.close()


def test_vector_searches_during_replacements_see_whole_articles() -> None:
    dim = 8
    rng = np.random.default_rng(11)
    index = VectorIndex(dim)

    def vectors(article_id: int, version: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array([vector_id(article_id, o) for o in range(version % 3 + 1)], dtype=np.int64)
        found = rng.normal(size=(len(ids), dim)).astype(np.float32)
        return ids, found / np.linalg.norm(found, axis=1, keepdims=True)

    for a in [*KEPT, *DELETED]:
        index.add(*vectors(a, 0))
    versions = dict.fromkeys(KEPT, 0)
    gone: set[int] = set()
    done = threading.Event()
    errors: list[BaseException] = []
    searches = [0]
    started = threading.Barrier(4)  # the writer and the 3 searchers
    #: 200 replacements take microseconds each: the writer goes on until the searches have run beside it
    wanted, deadline = 50, time.monotonic() + 30

    def write() -> None:
        try:
            started.wait(timeout=60)
            round_ = -1
            while (round_ := round_ + 1) < 200 or (searches[0] <= wanted and time.monotonic() < deadline):
                a = KEPT[round_ % len(KEPT)]
                versions[a] += 1
                deleted = [DELETED[round_ // 17]] if round_ % 17 == 16 and round_ // 17 < len(DELETED) else []
                ids, found = vectors(a, versions[a])
                index.replace_articles([a, *deleted], ids, found)
                gone.update(deleted)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def search() -> None:
        query = np.ones(dim, dtype=np.float32) / np.sqrt(dim)
        try:
            started.wait(timeout=60)
            while not done.is_set():
                before = set(gone)
                _check(index.search_keys(query, 10_000), before, "vector search")
                searches[0] += 1
        except BaseException as exc:
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=write), *(threading.Thread(target=search) for _ in range(3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]
    assert searches[0] > 20
    _check(index.search_keys(np.ones(dim, dtype=np.float32), 10_000), set(gone), "after")
