"""The index applier of another process (kb.cli.applier, issue 10 item 6): a serving knowledge base in remote mode
(Handoff.start_remote) never indexes; its write answers indexed (201) once its own copy has followed the change the
applier applied, and not indexed (202) when no applier runs, and is searchable once one runs again.

The applier here is :func:`kb.cli.applier.serve_applier` (what the child process runs) over a second knowledge base
on the same folders, in a thread; the real processes are tests/search/test_workers.py."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kb.articles.content import parse_markdown
from kb.cli.applier import ApplierProcess, serve_applier
from kb.config import Settings
from kb.errors import IndexUnavailableError
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import ROOT
from tests.search.test_handoff import found, wait_until


class NeverIndexes:
    """Stands in for the serving knowledge base's indexer: a remote-mode process must never index."""

    def index_articles(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the serving process indexed an article itself")


@contextmanager
def applier(settings: Settings, analyzer: TextAnalyzer, embedder: HashingEmbedder) -> Iterator[KnowledgeBase]:
    """An applier (the child process's loop) over the same folders, in a thread, until the block ends."""
    kb = KnowledgeBase(settings, embedder=embedder, analyzer=analyzer).open()
    stop = threading.Event()
    ready = threading.Event()
    thread = threading.Thread(target=serve_applier, args=(kb, stop, ready.set), daemon=True)
    thread.start()
    try:
        assert ready.wait(30)
        assert wait_until(lambda: kb.is_applier)
        yield kb
    finally:
        stop.set()
        thread.join(30)
        kb.close()


@pytest.fixture
def serving(settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder) -> Iterator[KnowledgeBase]:
    """A serving knowledge base whose writes another process applies (waits at most 1 s for them)."""
    kb = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer).open()
    kb.index.handoff.start_remote(1.0)
    kb.index._indexer = NeverIndexes()  # type: ignore[assignment]
    kb.start_background_applier()  # in remote mode: only follows
    try:
        yield kb
    finally:
        kb.close()


def test_a_write_is_searchable_on_return_though_another_process_applies_it(
    serving: KnowledgeBase, settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    with applier(settings, analyzer, hash_embedder) as other:
        assert not serving.is_applier  # remote mode never takes applier.lock, so no SLA jobs here either
        outcomes = [
            serving.writer.create(parse_markdown(f"# 远程应用 {i}\n编号 remotecode{i:02d} 的说明。"), "tester")
            for i in range(3)
        ]
        for i, outcome in enumerate(outcomes):
            assert outcome.indexed and outcome.article is not None
            assert found(serving, f"remotecode{i:02d}") == [outcome.article.id]  # read-your-writes, here
        assert found(other, "remotecode01") == [outcomes[1].article.id]  # type: ignore[union-attr]
        assert serving.index.late_writes() == 0
        assert serving.index.status().consistent


def test_without_an_applier_a_write_answers_not_indexed_then_becomes_searchable(
    serving: KnowledgeBase, settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    outcome = serving.writer.create(parse_markdown("# 无人应用\n编号 orphancode01 的说明。"), "tester")
    assert not outcome.indexed and outcome.seq is not None and outcome.article is not None
    assert serving.index.late_writes() == 1
    assert found(serving, "orphancode01") == []
    with applier(settings, analyzer, hash_embedder):
        assert wait_until(lambda: found(serving, "orphancode01") == [outcome.article.id])  # type: ignore[union-attr]
        assert serving.index.late_writes() == 0
        assert serving.index.status().consistent


def test_in_remote_mode_a_search_follows_the_applier_s_commit_itself(
    settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    """Read-your-writes across ``kb serve --workers N``: a write another process answered as searchable is found by
    this process's next search, with no background round to follow it (session 11's outside tester: with searches
    leaving the catch-up to the round, the other worker missed changes for up to ~2 s)."""
    serving = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer).open()
    other = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer).open()
    try:
        serving.index.handoff.start_remote(1.0)  # no background round started: only a search can follow
        assert found(serving, "followcode01") == []
        for n in range(1, 4):
            created = other.writer.create(parse_markdown(f"# 跟随{n}\n编号 followcode0{n} 的说明。"), "tester")
            assert created.indexed and created.article is not None
            assert found(serving, f"followcode0{n}") == [created.article.id]
            assert serving.index.generation.manifest.last_seq == created.seq
    finally:
        other.close()
        serving.close()


def test_an_applier_process_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "KB_DATA_DIR": str(tmp_path / "data"), "KB_EMBEDDING_MODEL": "no-such-model"}
    env["PYTHONPATH"] = str(ROOT)
    env.pop("KB_DATABASE_URL", None)
    process = ApplierProcess(env)
    with pytest.raises(IndexUnavailableError, match="KB_INDEX_APPLIER=thread"):
        process.start(ready_timeout_s=120)
    assert process.pid is None
    process.stop()


def test_the_file_hint_sees_every_commit_and_still_polls_every_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The applier process skips its outbox query while the SQLite files are unchanged: every commit (here a new
    outbox row through a real write) changes them; FULL_POLL_S bounds the skipping; PostgreSQL is always polled."""
    from sqlalchemy.engine import make_url

    from kb.cli import applier

    settings = Settings(data_dir=tmp_path / "data", embedding_model="hash", database_url="")
    kb = KnowledgeBase(settings, embedder=HashingEmbedder(), analyzer=TextAnalyzer()).open()
    try:
        files = applier.sqlite_files(kb.database.engine.url)
        assert files and files[0].exists()
        hint = applier.FileChangeHint(files)
        assert hint.changed()  # the first look
        assert not hint.changed()
        for i in range(5):
            max_seq = kb.index._outbox.max_seq()
            kb.writer.create(parse_markdown(f"# 打印机 {i}\n\n打印机脱机第{i}次。"), "tester")
            assert kb.index._outbox.max_seq() > max_seq
            assert hint.changed()
            assert not hint.changed()
        monkeypatch.setattr(applier, "FULL_POLL_S", 0.0)
        assert hint.changed()  # the safety net: at least every FULL_POLL_S
    finally:
        kb.close()
    assert applier.sqlite_files(make_url("postgresql+psycopg://u@h/db")) == []
    always = applier.FileChangeHint([])
    assert always.changed() and always.changed()
