"""Writes hand their index work to the background applier (kb.search.handoff, issue 10 item 6): concurrent writes
share index commits, a write answered as indexed (201) is searchable at once, one that is not (202) carries its seq
and becomes searchable when the applier catches up."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kb.api import create_app
from kb.articles.content import parse_markdown
from kb.config import Settings
from kb.ingest.writer import WriteOutcome
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.locks import writer_lock
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import add_test_user, applying, login, search_ids, wait_until


def found(kb: KnowledgeBase, query: str) -> list[int]:
    return [h.article_id for h in kb.engine.search(SearchRequest(query, mode="bm25")).results]


def bm25_commits(kb: KnowledgeBase) -> int:
    """whoosh's generation number of the live BM25 index: one more per commit."""
    return int(kb.index.generation.bm25._ix.latest_generation())


@pytest.fixture
def served(kb: KnowledgeBase) -> Iterator[KnowledgeBase]:
    kb.start_background_applier()
    assert wait_until(lambda: kb.index.handoff.wait_s is not None)
    return kb


def test_concurrent_writes_share_index_commits_and_are_searchable_on_return(served: KnowledgeBase) -> None:
    kb, n = served, 12
    before = bm25_commits(kb)
    outcomes: list[tuple[int, WriteOutcome, list[int]]] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        outcome = kb.writer.create(parse_markdown(f"# 批量写入 {i}\n编号 batchcode{i:02d} 的处理步骤。"), "tester")
        hits = found(kb, f"batchcode{i:02d}")  # read-your-writes: right after the answer
        with lock:
            outcomes.append((i, outcome, hits))

    # Hold the index writer's lock (as a rebuild in another process would) until every write is committed, so the
    # applier finds them all pending at once; the writes wait for it (index_wait_seconds is 30 s in tests).
    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    with writer_lock(kb.index.root, threading.RLock()):
        for t in threads:
            t.start()
        assert wait_until(lambda: kb.index._outbox.max_seq() >= n)
    for t in threads:
        t.join()
    assert len(outcomes) == n
    for _, outcome, hits in outcomes:
        assert outcome.indexed and outcome.article is not None and outcome.seq is not None
        assert hits == [outcome.article.id]
    assert bm25_commits(kb) - before <= 2 < n  # one round for all of them (two if a poll round began first)
    assert kb.index.status().consistent


def test_a_write_not_applied_in_time_is_not_indexed_then_applied(
    kb: KnowledgeBase, settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    kb.close()
    with applying(settings, analyzer, hash_embedder, 0.2) as service:
        with writer_lock(service.index.root, threading.RLock()):
            outcome = service.writer.create(parse_markdown("# 延迟索引\n编号 latecode01 的说明。"), "tester")
            assert not outcome.indexed and outcome.seq is not None and outcome.article is not None
            assert found(service, "latecode01") == []
        assert wait_until(lambda: found(service, "latecode01") == [outcome.article.id])  # type: ignore[union-attr]
        assert wait_until(lambda: service.index.status().consistent)  # searchable first, then the manifest


def test_http_202_carries_the_seq_and_the_article_becomes_searchable(
    settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    # 2 s, not 0.2 s: the first write must be applied within the wait to answer 201, and with test suites sharing
    # the cores a 0.2 s wait once answered 202 (session 8); the late write waits the 2 s out behind the lock
    quick = settings.model_copy(update={"index_wait_seconds": 2.0})
    service = KnowledgeBase(quick, embedder=hash_embedder, analyzer=analyzer)
    add_test_user(service)
    with TestClient(create_app(quick, kb=service), base_url="https://testserver") as client:
        login(client)
        assert wait_until(lambda: service.index.handoff.wait_s is not None)
        created = client.post("/articles", json={"body": "# 立即可搜\n编号 nowcode01 的说明。"})
        assert created.status_code == 201 and created.json()["indexed"] is True
        assert search_ids(client, "nowcode01", mode="bm25") == [created.json()["article"]["id"]]
        with writer_lock(service.index.root, threading.RLock()):
            late = client.post("/articles", json={"body": "# 稍后可搜\n编号 latecode02 的说明。"})
            assert late.status_code == 202
            answer = late.json()
            assert answer["indexed"] is False and answer["seq"] > created.json()["seq"]
            assert search_ids(client, "latecode02", mode="bm25") == []
        assert wait_until(lambda: search_ids(client, "latecode02", mode="bm25") == [answer["article"]["id"]])


def test_without_an_applier_a_write_applies_itself(kb: KnowledgeBase) -> None:
    assert kb.index.handoff.wait_s is None  # CLI, imports, tests: no background applier runs
    outcome = kb.writer.create(parse_markdown("# 同步写入\n编号 synccode01 的说明。"), "tester")
    assert outcome.indexed and outcome.article is not None
    assert found(kb, "synccode01") == [outcome.article.id]


def test_closing_with_a_backlog_loses_nothing(
    served: KnowledgeBase, settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    kb = served
    with writer_lock(kb.index.root, threading.RLock()):  # the applier cannot take the backlog before the close
        ids = [kb.store.create(parse_markdown(f"# 积压 {i}\n编号 backlog{i:02d} 的说明。"), "tester") for i in range(3)]
        kb.close()
    assert kb.index.handoff.stopped
    again = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer).open()  # replays the outbox
    try:
        for i, result in enumerate(ids):
            assert found(again, f"backlog{i:02d}") == [result.article.id]
        assert again.index.status().consistent
    finally:
        again.close()
