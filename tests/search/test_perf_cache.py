"""The versioned rows behind kb.search.article_cache: read once per version, never kept under a newer one."""

from __future__ import annotations

import pytest

from kb.search import article_cache
from kb.search.article_cache import _VersionedRows
from kb.service import KnowledgeBase


def test_rows_are_read_once_per_version_and_missing_keys_stay_absent() -> None:
    reads: list[list[int]] = []

    def load(keys: list[int]) -> dict[int, str]:
        reads.append(keys)
        return {k: f"v{k}" for k in keys if k != 3}

    rows = _VersionedRows(load)
    assert rows.get([1, 2, 3, 1], version=7) == {1: "v1", 2: "v2"}
    assert rows.get([2, 1], version=7) == {1: "v1", 2: "v2"}
    assert reads == [[1, 2, 3]]
    rows.get([1], version=8)  # a commit: everything is read again
    assert reads[-1] == [1]


def test_a_slow_reader_never_fills_a_newer_version() -> None:
    rows: _VersionedRows[int, str]
    interleaved: list[int] = []

    def load(keys: list[int]) -> dict[int, str]:
        if not interleaved:
            interleaved.append(1)
            rows.get([99], version=2)  # meanwhile, a reader of the next index version
        return {k: "old" for k in keys}

    rows = _VersionedRows(load)
    assert rows.get([1], version=1) == {1: "old"}
    assert 1 not in rows._rows and set(rows._rows) == {99}  # the old read was not kept under version 2


def test_rows_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(article_cache, "MAX_ENTRIES", 3)
    rows = _VersionedRows(lambda keys: {k: k for k in keys})
    rows.get([1, 2, 3], version=1)
    rows.get([4], version=1)
    assert set(rows._rows) == {4}


def test_the_caches_loaders_read_the_rows_the_stores_give(kb: KnowledgeBase) -> None:
    """load_summaries / load_passages (statements built once, run on the connection) against
    ArticleStore.summaries / ChunkStore.passages, with missing keys, repeated keys and more keys than one batch."""
    from kb.articles.content import ArticleContent
    from kb.search.article_cache import load_passages, load_summaries

    ids = []
    for i in range(6):
        body = "\n\n".join(f"## 第{j}节\n\n打印机 脱机 第{i}篇 第{j}段 " + "内容 " * 40 for j in range(30))
        article = kb.writer.create(ArticleContent(title=f"打印机 {i}", body=body, tags=[f"t{i}"]), "tester").article
        assert article is not None
        ids.append(article.id)
    chunks = kb.engine.chunks
    keys = [(a, o) for a in ids for o in range(40)] + [(ids[0], 0), (999_999, 0)]  # > 128, repeats, missing
    expected = chunks.passages(keys)
    assert len(expected) > 128
    assert load_passages(kb.database, keys) == expected
    assert load_passages(kb.database, []) == {}
    wanted = [*ids, ids[0], 999_999]
    assert load_summaries(kb.database, wanted) == kb.store.summaries(wanted)
    assert set(load_summaries(kb.database, wanted)) == set(ids)
    assert load_summaries(kb.database, []) == {}
