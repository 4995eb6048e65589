"""kb.search.lineage: which articles changed between two BM25 versions, and the search caches that keep the rest.

The BM25 index records, at each commit after it has been searched, the articles whose documents are new or gone
(a new article, a changed one, a deleted one); the caches of search keep the rows of every other article and read
the changed ones again, so a search after a commit never shows an article as it was before the commit.
"""

from __future__ import annotations

from pathlib import Path

from kb.articles.content import ArticleContent
from kb.articles.store import ArticleFilter
from kb.identity.scopes import Principal
from kb.search import lineage
from kb.search.article_cache import _VersionedRows
from kb.search.bm25 import BM25Index, ChunkDocument
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase


def _doc(article_id: int, ord_: int, words: str) -> ChunkDocument:
    return ChunkDocument(article_id, ord_, [f"标题{article_id}"], [], words.split(), [], [])


def test_chains_of_versions_add_up_and_unknown_ones_answer_none() -> None:
    base = 10_000_000  # far from the versions real indexes take in this process
    lineage.record(base + 1, base, frozenset({1}))
    lineage.record(base + 2, base + 1, frozenset({2, 3}))
    assert lineage.changed_between(base, base + 2) == {1, 2, 3}
    assert lineage.changed_between(base + 1, base + 2) == {2, 3}
    assert lineage.changed_between(base + 2, base + 2) == frozenset()
    assert lineage.changed_between(base - 5, base + 2) is None  # not in the chain
    assert lineage.changed_between(base, base + 3) is None  # never recorded


def test_a_searched_index_records_exactly_the_articles_a_commit_touched(tmp_path: Path) -> None:
    index = BM25Index.create(tmp_path / "bm25")
    index.replace_articles([_doc(1, 0, "打印机 脱机"), _doc(1, 1, "重启 服务"), _doc(2, 0, "网络 中断")], [])
    assert index.search({"打印机": 1.0}, 5)  # searched: from now on each commit builds its view at once
    index.replace_articles([_doc(3, 0, "邮箱 登录")], [3])  # a new article
    v1 = index.version
    index.replace_articles([_doc(1, 0, "打印机 联机")], [1])  # article 1 changed (one chunk fewer)
    v2 = index.version
    index.replace_articles([], [2])  # article 2 deleted
    v3 = index.version
    assert lineage.changed_between(v1, v2) == {1}
    assert lineage.changed_between(v2, v3) == {2}
    assert lineage.changed_between(v1, v3) == {1, 2}
    assert {h.article_id for h in index.search({"网络": 1.0}, 5)} == set()
    index.close()


def test_a_segment_merged_away_counts_its_live_articles(tmp_path: Path) -> None:
    index = BM25Index.create(tmp_path / "bm25")
    for article_id in range(1, 12):  # many small commits: whoosh merges small segments as it goes
        index.replace_articles([_doc(article_id, 0, f"词{article_id} 共同")], [article_id])
        index.search({"共同": 1.0}, 50)
    before = index.version
    index.replace_articles([_doc(99, 0, "新的 共同")], [99])
    changed = lineage.changed_between(before, index.version)
    assert changed is not None and 99 in changed
    # whatever whoosh merged in that commit is in the set too: every article of a segment that is gone
    assert {h.article_id for h in index.search({"共同": 1.0}, 50)} == set(range(1, 12)) | {99}
    index.close()


def test_rows_of_unchanged_articles_are_kept_across_a_recorded_version() -> None:
    reads: list[list[int]] = []

    def load(keys: list[int]) -> dict[int, str]:
        reads.append(sorted(keys))
        return {k: f"v{k}-{len(reads)}" for k in keys}

    base = 20_000_000
    lineage.record(base + 1, base, frozenset({2}))
    rows = _VersionedRows(load, lambda k: k)
    first = rows.get([1, 2, 3], version=base)
    again = rows.get([1, 2, 3], version=base + 1)
    assert reads == [[1, 2, 3], [2]]  # only the changed article is read again
    assert again[1] == first[1] and again[3] == first[3] and again[2] != first[2]
    rows.get([1], version=base + 7)  # a version with no known lineage: everything is read again
    assert reads[-1] == [1]


def test_search_after_a_commit_shows_changed_articles_as_they_are_now(kb: KnowledgeBase) -> None:
    viewer = Principal("req.one", ("requester",))
    kept = kb.writer.create(
        ArticleContent(title="打印机 脱机 处理", body="打印机脱机时重启打印服务。", visibility="public"), "t"
    ).article
    moved = kb.writer.create(
        ArticleContent(title="打印机 卡纸", body="打印机卡纸时打开后盖。", visibility="public"), "t"
    ).article
    assert kept is not None and moved is not None

    def titles() -> dict[int, str]:
        request = SearchRequest(query="打印机", filters=ArticleFilter(viewer=viewer))
        return {hit.article_id: hit.title for hit in kb.engine.search(request).results}

    assert titles() == {kept.id: "打印机 脱机 处理", moved.id: "打印机 卡纸"}
    titles()  # the index has been searched: the next commits record what they change
    kb.writer.update(
        moved.id, ArticleContent(title="打印机 卡纸 新版", body="打印机卡纸时打开后盖。", visibility="public"), "t"
    )
    assert titles() == {kept.id: "打印机 脱机 处理", moved.id: "打印机 卡纸 新版"}
    assert kept.id in kb.engine._cache._summaries._rows  # kept across the commit, not read again
    hidden = ArticleContent(title="打印机 卡纸 新版", body="打印机卡纸时打开后盖。", visibility="internal")
    kb.writer.update(moved.id, hidden, "t")
    assert titles() == {kept.id: "打印机 脱机 处理"}  # a requester may not see internal articles
    kb.writer.delete(kept.id, "t")
    assert titles() == {}
