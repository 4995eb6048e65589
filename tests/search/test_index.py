"""Index consistency: updates, deletes, replay, rebuild, mismatch, failures (BL-26..41, BL-54)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from kb.articles.content import parse_markdown
from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.errors import IndexMismatchError, IndexUnavailableError, NotFoundError
from kb.models import Article, utcnow
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase


def ids(kb: KnowledgeBase, q: str, mode: str = "hybrid", **kw: object) -> list[int]:
    return [h.article_id for h in kb.engine.search(SearchRequest(q, mode=mode, **kw)).results]  # type: ignore[arg-type]


def add(kb: KnowledgeBase, title: str, body: str) -> int:
    outcome = kb.writer.create(parse_markdown(body, title=title), "tester")
    assert outcome.indexed and outcome.article is not None
    return outcome.article.id


def test_update_replaces_all_old_chunks(kb: KnowledgeBase) -> None:  # BL-30
    aid = add(kb, "VPN 服务器", "VPN 服务器地址 vpn1.example.com")
    content = parse_markdown("VPN 服务器地址 vpn2.example.com", title="VPN 服务器")
    assert kb.writer.update(aid, content, "tester").indexed
    assert ids(kb, "vpn1", "bm25") == []
    hits = kb.engine.search(SearchRequest("VPN 服务器地址")).results
    assert [h.article_id for h in hits] == [aid]
    assert hits[0].version == 2 and "vpn2" in hits[0].snippet and "vpn1" not in hits[0].snippet
    assert kb.index.status().consistent


def test_delete_removes_every_chunk_from_both_legs(kb: KnowledgeBase) -> None:  # BL-29
    body = "\n\n".join(f"## 第{i}节\n\n紫色独角兽打印机 第{i}段说明。" for i in range(130))
    aid = add(kb, "大文章", body)
    gen = kb.index.generation
    assert gen.bm25.count_article(aid) >= 120 and gen.vectors.count_article(aid) >= 120
    kb.writer.delete(aid, "tester")
    for mode in ("hybrid", "bm25", "vector"):
        assert ids(kb, "紫色独角兽打印机", mode) == []
    assert gen.bm25.count_article(aid) == 0 and gen.vectors.count_article(aid) == 0
    with pytest.raises(NotFoundError):
        kb.writer.delete(aid, "tester")
    assert kb.index.status().consistent


def test_add_delete_add_then_restart(settings: Settings, analyzer: TextAnalyzer) -> None:  # BL-26
    texts = [f"第{i}号设备 型号{i * 1111} 故障说明 {'甲乙丙丁戊己庚'[i - 1]}" for i in range(1, 8)]
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    made = {i: add(kb, f"设备{i}", texts[i - 1]) for i in range(1, 6)}
    kb.writer.delete(made[2], "tester")
    kb.writer.delete(made[4], "tester")
    made.update({i: add(kb, f"设备{i}", texts[i - 1]) for i in (6, 7)})
    kb.close()
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    try:
        for i in (1, 3, 5, 6, 7):
            assert ids(kb, texts[i - 1], "vector")[0] == made[i]
            assert made[2] not in ids(kb, texts[i - 1], limit=100)
            assert made[4] not in ids(kb, texts[i - 1], limit=100)
        status = kb.index.status()
        assert status.vector_chunks == status.bm25_chunks == status.db_chunks == 5 and status.consistent
    finally:
        kb.close()


def test_empty_kb_answers_empty_lists(kb: KnowledgeBase) -> None:  # BL-27
    for mode in ("hybrid", "bm25", "vector"):
        assert ids(kb, "打印机", mode) == []
    aid = add(kb, "临时", "临时文章")
    kb.writer.delete(aid, "tester")
    assert ids(kb, "临时文章") == []


def test_fewer_articles_than_limit(kb: KnowledgeBase) -> None:  # BL-28
    made = [add(kb, f"文章{i}", f"内容{i}") for i in range(3)]
    assert sorted(ids(kb, "内容", limit=10)) == sorted(made)


def test_writes_without_the_outbox_applied_are_replayed_on_start(
    settings: Settings, analyzer: TextAnalyzer
) -> None:  # BL-41, BL-54 (crash after commit, before indexing)
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    add(kb, "已索引", "已经索引的文章")
    result = kb.store.create(parse_markdown("崩溃前提交的文章 标记词青龙", title="未索引"), "tester")
    status = kb.index.status()
    assert status.pending == 1 and not status.consistent
    assert kb.index.status(full=False).pending == 1 and not kb.index.status(full=False).consistent
    kb.close()
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    try:
        assert ids(kb, "青龙", "bm25") == [result.article.id]
        assert kb.index.status().consistent
    finally:
        kb.close()


def test_rows_inserted_outside_the_orm_are_flagged_then_rebuilt(kb: KnowledgeBase) -> None:  # BL-54
    now = utcnow()
    with kb.database.session() as session:
        for i in range(10):
            session.execute(
                insert(Article).values(
                    title=f"批量{i}",
                    summary="",
                    body=f"直接写库的文章 白虎{i}",
                    kind="article",
                    tags=[],
                    error_codes=[],
                    status="published",
                    visibility="internal",
                    source="sql",
                    meta={},
                    content_hash=str(i),
                    version=1,
                    created_at=now,
                    updated_at=now,
                    created_by="sql",
                    updated_by="sql",
                )
            )
    status = kb.index.status()
    assert len(status.unindexed_articles) == 10 and not status.consistent
    counts = kb.index.status(full=False)  # counts only (/health, /metrics): the rows are missed all the same
    assert not counts.consistent and (counts.articles, counts.indexed_articles) == (10, 0)
    kb.index.rebuild()
    status = kb.index.status()
    assert status.consistent and status.articles == 10
    assert kb.index.status(full=False) == status  # the same figures when the index agrees with the database
    assert len(ids(kb, "白虎3")) >= 1
    generation = status.generation
    kb.index.rebuild()
    again = kb.index.status()
    assert again.generation == generation + 1
    assert (again.articles, again.db_chunks, again.bm25_chunks, again.vector_chunks) == (
        status.articles,
        status.db_chunks,
        status.bm25_chunks,
        status.vector_chunks,
    )
    # the live generation and the previous one (kept for processes that still have it open); older ones deleted
    assert sorted(p.name for p in kb.index.root.glob("gen-*")) == [f"gen-{generation:06d}", f"gen-{generation + 1:06d}"]


def test_model_mismatch_names_the_rebuild_command(settings: Settings, analyzer: TextAnalyzer) -> None:
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    kb.close()
    other = KnowledgeBase(settings, embedder=HashingEmbedder(dimension=128), analyzer=analyzer)
    with pytest.raises(IndexMismatchError, match="kb index rebuild"):
        other.open()
    other.index.rebuild()
    other.close()


def test_failed_indexing_leaves_no_stale_lock(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:  # BL-38
    original = kb.analyzer.tokens

    def exploding(text: str):  # type: ignore[no-untyped-def]
        if "爆炸标记" in text:
            raise RuntimeError("analyzer failure")
        return original(text)

    monkeypatch.setattr(kb.analyzer, "tokens", exploding)
    failed = kb.writer.create(parse_markdown("爆炸标记 文章", title="坏文章"), "tester")
    assert not failed.indexed and failed.seq is not None  # saved, answered 202 with its seq (issue 10), not a 500
    monkeypatch.setattr(kb.analyzer, "tokens", original)
    good = add(kb, "好文章", "正常的文章 玄武")
    assert ids(kb, "玄武") and good in ids(kb, "玄武")
    assert kb.index.status().consistent  # the failed one was replayed by the next apply


def test_index_write_failure_keeps_the_write_and_reports_not_indexed(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:  # BL-36
    def locked(*_args: object, **_kw: object) -> None:
        raise IndexUnavailableError("BM25 index is locked by another writer")

    monkeypatch.setattr(kb.index.generation.bm25, "replace_articles", locked)
    outcome = kb.writer.create(parse_markdown("锁住时写入 朱雀", title="锁"), "tester")
    assert not outcome.indexed and outcome.seq is not None
    assert kb.index.status().pending == 1
    monkeypatch.undo()
    kb.index.apply_pending()
    assert ids(kb, "朱雀", "bm25") == [outcome.article.id]  # type: ignore[union-attr]
    assert kb.index.status().consistent


def test_filters_apply_before_the_limit(kb: KnowledgeBase) -> None:
    for i in range(30):
        add(kb, f"网络故障{i}", "网络 故障 排查 步骤")
    kb.writer.create(parse_markdown("网络 故障 排查", title="邮件网络", service="mail"), "tester")
    hits = ids(kb, "网络 故障", limit=5, filters=ArticleFilter(services=("mail",)))
    assert len(hits) == 1
    draft = kb.writer.create(parse_markdown("网络 故障 草稿", title="草稿", status="draft"), "tester")
    assert draft.article is not None
    assert draft.article.id not in ids(kb, "网络 故障 草稿", limit=50)
    assert draft.article.id in ids(kb, "草稿", filters=ArticleFilter(statuses=("draft",)))


def test_import_is_idempotent_and_tracks_changes(kb: KnowledgeBase, tmp_path: Path) -> None:
    root = tmp_path / "kbdocs"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("---\ntitle: 甲\n---\n甲的正文 苍龙", encoding="utf-8")
    (root / "sub" / "b.md").write_text("# 乙\n乙的正文 白泽", encoding="utf-8")
    (root / "bad.md").write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    (root / "latin1.md").write_bytes("# café\n".encode("latin-1"))
    first = kb.writer.import_paths([root], "tester")
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert {Path(p).name for p, _ in first.errors} == {"bad.md", "latin1.md"}
    articles, _ = kb.store.list_articles(ArticleFilter(statuses=()))
    assert sorted(a.source_path or "" for a in articles) == ["a.md", "sub/b.md"]
    assert all(a.collection == "kbdocs" for a in articles)
    second = kb.writer.import_paths([root], "tester")
    assert (second.created, second.updated, second.unchanged) == (0, 0, 2)
    (root / "a.md").write_text("---\ntitle: 甲\n---\n甲的新正文 麒麟", encoding="utf-8")
    third = kb.writer.import_paths([root], "tester")
    assert (third.created, third.updated, third.unchanged) == (0, 1, 1)
    a = next(x for x in kb.store.list_articles(ArticleFilter(statuses=()))[0] if x.source_path == "a.md")
    assert a.version == 2 and ids(kb, "麒麟", "bm25") == [a.id] and ids(kb, "苍龙", "bm25") == []
    (root / "sub" / "b.md").unlink()
    fourth = kb.writer.import_paths([root], "tester", delete_missing=True)
    assert len(fourth.retired) == 1
    assert ids(kb, "白泽", "bm25") == []
    assert kb.index.status().consistent


def test_unreadable_generation_is_rebuilt_from_the_database(
    settings: Settings, analyzer: TextAnalyzer
) -> None:  # BL-41
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    aid = add(kb, "幸存", "崩溃之后仍能找到 标记词貔貅")
    gen_path = kb.index.generation.path
    kb.close()
    for toc in (gen_path / "bm25").glob("_MAIN_*.toc"):
        toc.write_bytes(b"\x00garbage")
    (gen_path / "vectors.faiss").write_bytes(b"not a faiss index")
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=analyzer).open()
    try:
        assert ids(kb, "貔貅", "bm25") == [aid]
        assert kb.index.generation.path != gen_path and kb.index.status().consistent
    finally:
        kb.close()


def test_two_data_dirs_side_by_side(tmp_path: Path, analyzer: TextAnalyzer) -> None:
    first, second = (
        KnowledgeBase(Settings(data_dir=tmp_path / name, embedding_model="hash"), analyzer=analyzer).open()
        for name in ("a", "b")
    )
    try:
        a = add(first, "甲库", "只在甲库 标记词饕餮")
        add(second, "乙库", "只在乙库 标记词梼杌")
        assert ids(first, "饕餮", "bm25") == [a] and ids(first, "梼杌", "bm25") == []
        assert ids(second, "饕餮", "bm25") == []
    finally:
        first.close()
        second.close()


def test_deleted_articles_never_come_back_in_listings_or_odd_queries(kb: KnowledgeBase) -> None:  # BL-32
    keep = add(kb, "打印机", "打印机 卡纸")
    gone = add(kb, "扫描仪", "扫描仪 卡纸")
    kb.writer.delete(gone, "tester")
    for q in ("*", "NOT 打印机", "卡纸", "扫描仪 OR 打印机", '"扫描仪"'):
        for mode in ("hybrid", "bm25", "vector"):
            assert gone not in ids(kb, q, mode, limit=100), (q, mode)
    listed, total = kb.store.list_articles(ArticleFilter(statuses=()))
    assert [a.id for a in listed] == [keep] and total == 1


def _open_at_once(data_dir: str, barrier: Any, results: Any) -> None:
    """A process opening the KB of ``data_dir`` (SQLite, hash encoder) once every opener is ready."""
    settings = Settings(data_dir=Path(data_dir), embedding_model="hash")
    barrier.wait(60)
    try:
        kb = KnowledgeBase(settings, embedder=HashingEmbedder()).open()
        results.put(kb.index.status().generation)
        kb.close()
    except Exception as exc:  # reported to the test, which fails with it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_an_empty_folder_at_once_share_one_generation(tmp_path: Path) -> None:
    """``kb serve --workers N`` on a new data folder: N processes open the empty index at the same moment (the
    second's temporary vector file was renamed away by the first: FileNotFoundError, a worker that never started)."""
    import multiprocessing

    data = tmp_path / "data"
    KnowledgeBase(Settings(data_dir=data, embedding_model="hash"), embedder=HashingEmbedder()).close()  # migrated
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    openers = [context.Process(target=_open_at_once, args=(str(data), barrier, results)) for _ in range(4)]
    for opener in openers:
        opener.start()
    answers = [results.get(timeout=120) for _ in openers]
    for opener in openers:
        opener.join(30)
    assert answers == [1, 1, 1, 1], answers
    assert sorted(p.name for p in (data / "index").glob("gen-*")) == ["gen-000001"]
