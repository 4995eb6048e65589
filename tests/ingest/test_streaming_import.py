"""``kb import`` streams: the index is applied every ``batch_files`` files; a killed import loses no written file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.config import Settings
from kb.ingest.markdown import import_paths
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase


def _folder(tmp_path: Path, n: int) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(n):
        (root / f"a{i}.md").write_text(f"# 文档{i}\n\n第{i}篇的正文 标记词{i}号麒麟", encoding="utf-8")
    return root


class Crash(Exception):
    """Stands for the process being killed between two batches."""


def test_index_follows_every_batch_of_files(kb: KnowledgeBase, tmp_path: Path) -> None:
    root = _folder(tmp_path, 5)
    lags: list[int] = []

    def apply() -> None:
        lags.append(kb.index.status().pending)
        kb.index.apply_pending()

    report = import_paths(kb.store, [root], "tester", on_batch=apply, batch_files=2)
    assert report.created == 5
    assert lags == [2, 2, 1]  # after files 2 and 4, then the last one: never more than a batch behind
    status = kb.index.status()
    assert status.articles == 5 and status.pending == 0 and status.consistent


def test_writer_import_indexes_everything(kb: KnowledgeBase, tmp_path: Path) -> None:
    report = kb.writer.import_paths([_folder(tmp_path, 3)], "tester")
    assert report.created == 3
    hits = kb.engine.search(SearchRequest("标记词2号麒麟", mode="bm25")).results
    assert [h.title for h in hits][:1] == ["文档2"]
    assert kb.index.status().consistent


def test_killed_import_loses_no_written_file(settings: Settings, analyzer: TextAnalyzer, tmp_path: Path) -> None:
    root = _folder(tmp_path, 5)
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    calls = 0

    def apply_then_die() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # files 3 and 4 are committed, not yet indexed
            raise Crash
        kb.index.apply_pending()

    try:
        with pytest.raises(Crash):
            import_paths(kb.store, [root], "tester", on_batch=apply_then_die, batch_files=2)
        assert kb.index.status().pending == 2
    finally:
        kb.close()
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    try:
        status = kb.index.status()
        assert status.articles == 4 and status.pending == 0 and status.consistent
        for i in range(4):
            hits = kb.engine.search(SearchRequest(f"标记词{i}号麒麟", mode="bm25")).results
            assert hits and hits[0].title == f"文档{i}"
        again = kb.writer.import_paths([root], "tester")  # the re-run writes only what was never written
        assert (again.created, again.unchanged) == (1, 4)
        assert kb.index.status().articles == 5
    finally:
        kb.close()
