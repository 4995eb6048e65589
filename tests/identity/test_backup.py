"""Backup and restore round trip (数据备份恢复, GB/T 22239-2019 7.1.4.8): after restoring, the data and the search
results are those of the backup, the audit chain is intact and records both; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kb.articles.content import parse_markdown
from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.desk.workflow import NewTicket
from kb.errors import InvalidInputError
from kb.identity.backup import MANIFEST, backup, restore
from kb.ingest.tickets import import_tickets
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import EXPORT, NO_LICENSES

pytestmark = pytest.mark.security

QUERIES = ["远程桌面 许可证", "VPN 连不上", "打印机卡纸"]


def _state(kb: KnowledgeBase) -> dict[str, Any]:
    articles, _ = kb.store.list_articles(ArticleFilter(statuses=()), 0, 1000)
    everything = ArticleFilter(statuses=())
    results = {
        q: [(r.article_id, round(r.score, 6)) for r in kb.engine.search(SearchRequest(q, filters=everything)).results]
        for q in QUERIES
    }
    tickets = sorted((t.id, t.title, t.status) for t in kb.desk.open_tickets())
    return {"articles": sorted((a.id, a.title, a.version) for a in articles), "results": results, "tickets": tickets}


def test_backup_restore_round_trip(
    settings: Settings, tmp_path: Path, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    def open_kb() -> KnowledgeBase:
        return KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer).open()

    kb = open_kb()
    kept = kb.writer.create(parse_markdown(NO_LICENSES), "tests").article.id
    doomed = kb.writer.create(parse_markdown("# 打印机卡纸\n\n打开前盖取出卡住的纸。"), "tests").article.id
    import_tickets(kb.database, EXPORT, "kb-zh")
    kb.tickets.take_in(NewTicket(title="VPN 连不上", description="提示 809", service="日常服务"), "tests")
    before = _state(kb)
    assert before["results"]["打印机卡纸"][0][0] == doomed and before["tickets"]
    report = backup(settings, tmp_path / "backup", kb.audit)
    assert report.files >= 2 and (tmp_path / "backup" / MANIFEST).exists()
    with pytest.raises(InvalidInputError, match="not empty"):
        backup(settings, tmp_path / "backup", kb.audit)

    kb.writer.delete(doomed, "tests")  # changes after the backup, undone by the restore
    kb.tickets.take_in(NewTicket(title="邮箱满了", description="", service="日常服务"), "tests")
    assert _state(kb) != before
    assert kb.audit.query(event="backup")[0] == 1  # audited in the live trail, after the copy succeeded
    kb.close()

    restore(settings, tmp_path / "backup")
    kb = open_kb()
    try:
        assert _state(kb) == before
        assert kb.store.get(kept).title == parse_markdown(NO_LICENSES).title
        assert kb.audit.verify().ok
        events = [r.event for r in kb.audit.query(limit=500)[1]]
        assert events[0] == "restore" and "article.delete" not in events
    finally:
        kb.close()


def test_a_damaged_backup_is_refused_and_changes_nothing(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.writer.create(parse_markdown(NO_LICENSES), "tests")
    backup(kb.settings, tmp_path / "b", kb.audit)
    damaged = next(p for p in (tmp_path / "b").rglob("*") if p.is_file() and p.name != MANIFEST)
    damaged.write_bytes(damaged.read_bytes() + b"x")
    with pytest.raises(InvalidInputError, match="damaged"):
        restore(kb.settings, tmp_path / "b")
    with pytest.raises(InvalidInputError, match="no kb backup"):
        restore(kb.settings, tmp_path / "nothing")
    assert kb.store.count() == 1
