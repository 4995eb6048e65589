"""Search filters with the database's state of an article, not the index's, while the index has not applied its
change yet (a write answered 202: a rebuild in another process holds the index writer, or the applier is behind).

Found by session 11's outside tester (L5): a deleted article stayed in search results for ~6 s during a rebuild.
The same lag let an article that had just been restricted to one group reach everyone else's results, and its words
their query terms. The index still holds the old text until it catches up; the filters (visibility, status,
existence) are the database's at once."""

from __future__ import annotations

import threading
import time

from sqlalchemy import event

from kb.articles.content import parse_markdown
from kb.articles.filters import ArticleFilter
from kb.config import Settings
from kb.db import Database
from kb.identity.scopes import Principal
from kb.models import OutboxEntry, utcnow
from kb.search import lineage
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.locks import writer_lock
from kb.search.pending import RECHECK_S, PendingChanges
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import applying, wait_until

DESK = Principal("desk.one", ("agent",), ("桌面组",))
NETWORK = Principal("net.one", ("agent",), ("网络组",))
OPEN_TEXT = "# 核心交换机带外管理\n\n带外管理口 oobcode77 的登录步骤。\n"
RESTRICTED = "---\nvisibility: restricted\nrestricted_to: [网络组]\n---\n" + OPEN_TEXT


def found(kb: KnowledgeBase, query: str, viewer: Principal | None = None, mode: str = "hybrid") -> list[int]:
    request = SearchRequest(query, mode=mode, filters=ArticleFilter(viewer=viewer))
    return [hit.article_id for hit in kb.engine.search(request).results]


def test_a_restriction_or_a_deletion_the_index_has_not_applied_already_filters_search(
    kb: KnowledgeBase, settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    kb.close()
    with applying(settings, analyzer, hash_embedder, 0.2) as service:
        secret = service.writer.create(parse_markdown(OPEN_TEXT), "tester").article
        gone = service.writer.create(parse_markdown("# 旧的带外说明\n\n带外管理口 oobcode77 已停用。\n"), "tester")
        assert secret is not None and gone.article is not None
        for mode in ("hybrid", "bm25", "vector"):  # every leg's answer and the summaries are cached now
            assert secret.id in found(service, "oobcode77", DESK, mode)
        assert gone.article.id in found(service, "oobcode77")
        with writer_lock(service.index.root, threading.RLock()):  # as a rebuild in another process holds it
            restricted = service.writer.update(secret.id, parse_markdown(RESTRICTED), "tester")
            deleted = service.writer.delete(gone.article.id, "tester")
            assert not restricted.indexed and not deleted.indexed  # answered 202: the index has the old state
            for mode in ("hybrid", "bm25", "vector"):
                assert secret.id not in found(service, "oobcode77", DESK, mode), mode
                assert gone.article.id not in found(service, "oobcode77", None, mode), mode
                assert found(service, "oobcode77", NETWORK, mode) == [secret.id], mode
            answer = service.engine.search(SearchRequest("oobcode77", explain=True, filters=ArticleFilter(viewer=DESK)))
            assert answer.explain is not None and not answer.results
            assert not any(answer.explain.candidates.values())  # no candidate the caller may not see is counted
        assert wait_until(lambda: service.index.status().consistent)
        assert found(service, "oobcode77", DESK) == [] and found(service, "oobcode77", NETWORK) == [secret.id]


def test_an_overlay_version_tells_which_articles_differ_from_its_base_and_from_later_versions() -> None:
    base = lineage.new_version()
    later = lineage.new_version()
    lineage.record(later, base, frozenset({1}))
    first = lineage.overlay(base, frozenset({7}))
    second = lineage.overlay(base, frozenset({7, 8}))
    assert lineage.changed_between(base, first) == {7}
    assert lineage.changed_between(first, second) == {7, 8}
    assert lineage.changed_between(first, later) == {1, 7}  # the overlay's articles, and the index's own change
    assert lineage.changed_between(second, base) == {7, 8}
    assert lineage.changed_between(lineage.new_version(), first) is None  # no known path: start again


def test_the_outbox_is_read_again_after_a_commit_here_at_once_and_after_one_elsewhere_within_20_ms(
    kb: KnowledgeBase,
) -> None:
    """A search reads the outbox again when this process committed an outbox row or its index applied one (at once),
    and at least every RECHECK_S for another process's commits; otherwise it sends no statement."""
    statements: list[str] = []
    event.listen(kb.database.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    pending = PendingChanges(kb.database, recheck_s=3600.0)  # no re-read by time here: CI's clock may be slow
    gen = kb.index.generation
    first = pending.version(gen)
    assert first == gen.bm25.version and pending.version(gen) == first
    assert sum("outbox" in s for s in statements) == 1  # the second search sent nothing
    written = kb.writer.create(parse_markdown("# 新文章\n\n正文。\n"), "tester")
    assert written.indexed and pending.version(gen) == gen.bm25.version != first  # seen, and already applied
    timed = PendingChanges(kb.database)  # the server's interval
    assert timed.version(gen) == gen.bm25.version
    other = Database(kb.database.url)  # another process's connection pool: its commits are not counted here
    try:
        with writer_lock(kb.index.root, threading.RLock()), other.session() as session:
            session.add(OutboxEntry(article_id=written.article.id, op="upsert", created_at=utcnow()))  # type: ignore[union-attr]
        assert pending.version(gen) == gen.bm25.version  # nothing committed here, nothing applied: the last answer
        time.sleep(RECHECK_S + 0.01)
        overlay = timed.version(gen)
        assert overlay != gen.bm25.version and lineage.overlay_of(overlay) == (gen.bm25.version, {written.article.id})  # type: ignore[union-attr]
    finally:
        other.dispose()
