"""PostgreSQL outbox that cannot skip (issue 10): sequence values are handed out before commit, so without the
outbox lock seq N+1 could commit (and be applied) before seq N, and N would be skipped for ever."""

from __future__ import annotations

import threading
import time

import pytest

from kb.articles.content import parse_markdown
from kb.articles.outbox import enqueue
from kb.models import Article, utcnow
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

pytestmark = pytest.mark.postgres


def test_a_smaller_seq_committed_later_is_still_applied(kb: KnowledgeBase) -> None:
    if kb.database.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite serialises writers")
    kb.index.apply_pending()
    slow = kb.database.sessions()
    slow.begin()  # connection 1: an article write that has drawn seq N and has not committed yet
    now = utcnow()
    article = Article(
        title="慢事务", summary="", body="慢事务写入的文章 青龙偃月", kind="article", tags=[], error_codes=[],
        status="published", visibility="internal", source="api", meta={}, content_hash="slow", version=1,
        created_at=now, updated_at=now, created_by="t", updated_by="t",
    )  # fmt: skip
    slow.add(article)
    slow.flush()
    seq_n = enqueue(slow, article.id, "upsert")
    done: list[int] = []

    def fast_writer() -> None:  # connection 2: a later write (seq N+1) that tries to commit first
        result = kb.store.create(parse_markdown("快事务写入的文章 白虎节堂", title="快事务"), "t")
        done.append(result.seq or 0)

    writer = threading.Thread(target=fast_writer)
    writer.start()
    time.sleep(1.0)
    assert not done, "the later writer committed while seq N was still open"
    assert kb.index.apply_pending() < seq_n  # nothing beyond N-1 is visible, so nothing can be skipped
    slow.commit()
    slow.close()
    writer.join(timeout=30)
    assert done and done[0] > seq_n
    assert kb.index.apply_pending() == done[0]
    assert kb.index.status().consistent, "seq N was skipped"
    found = kb.engine.search(SearchRequest("青龙偃月", mode="bm25"))
    assert article.id in [hit.article_id for hit in found.results]
