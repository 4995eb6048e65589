"""Concurrent writes to one article (session 11's outside tester): two PUTs at once answered 500 (SQLite:
``UNIQUE constraint failed: article_versions``; a PUT racing a DELETE: ``StaleDataError``), and a PUT whose fields
were read before another PUT committed silently reverted that change. Now writes of one article decide one after
the other (:func:`kb.articles.rows.lock_article`) and a PUT made from a version that is no longer current answers
409 ``conflict``; no answer is a 5xx, and no version reverts a field another version set."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from kb.models import ArticleVersion
from tests.helpers import create, kb_of


def _admitted(send: Callable[[], httpx.Response]) -> int:
    """The status of ``send()`` once the write admission limit lets it in (a 429 is retried, as its Retry-After
    asks; a loaded machine refuses many)."""
    for _ in range(200):
        status = send().status_code
        if status != 429:
            return status
        time.sleep(0.05)
    raise AssertionError("refused with 429 200 times")


def _run_together(threads: list[threading.Thread]) -> None:
    """Start every thread, then wait for each (at most 120 s apiece)."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def test_concurrent_puts_and_deletes_of_one_article_never_500_nor_lose_an_update(client: TestClient) -> None:
    article = create(client, "# 并发写\n正文", tags=["起始"], summary="起始摘要")
    url = f"/articles/{article['id']}"
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def put(n: int) -> None:
        barrier.wait(timeout=30)
        for i in range(6):
            change = {"tags": [f"标签{n}-{i}"]} if n % 2 else {"summary": f"摘要{n}-{i}"}
            statuses.append(_admitted(lambda change=change: client.put(url, json=change)))

    _run_together([threading.Thread(target=put, args=(n,)) for n in range(8)])
    assert set(statuses) <= {200, 409}, statuses
    assert 200 in statuses
    with kb_of(client).database.session() as session:
        versions = session.scalars(
            select(ArticleVersion).where(ArticleVersion.article_id == article["id"]).order_by(ArticleVersion.version)
        ).all()
        fields = [(v.version, v.fields.get("tags"), v.fields.get("summary")) for v in versions]
    assert [v for v, _, _ in fields] == list(range(1, len(fields) + 1))
    assert len(fields) == 1 + statuses.count(200)
    for (_, tags0, summary0), (version, tags1, summary1) in itertools.pairwise(fields):
        assert (tags0 != tags1) + (summary0 != summary1) == 1, f"version {version} changed or reverted both"

    other = create(client, "# 并发删\n正文")
    gone = f"/articles/{other['id']}"
    answers: list[int] = []
    start = threading.Barrier(3)

    def act(kind: str) -> None:
        start.wait(timeout=30)
        for i in range(5):
            if kind == "delete":
                answers.append(_admitted(lambda: client.delete(gone)))
            else:
                answers.append(_admitted(lambda i=i: client.put(gone, json={"summary": f"{kind}{i}"})))

    _run_together([threading.Thread(target=act, args=(k,)) for k in ("delete", "put", "put")])
    assert set(answers) <= {200, 404, 409}, answers
    assert client.get(gone).status_code == 404


def test_status_changes_racing_puts_never_revert_a_put(client: TestClient) -> None:
    """A status change writes the article as it is when the change commits (ArticleStore.modify), never content read
    before a concurrent PUT committed (session 12's review: the lost-update fix had covered PUT only)."""
    article = create(client, "# 状态并发\n正文", summary="起始摘要", status="draft")
    url = f"/articles/{article['id']}"
    answers: list[int] = []
    barrier = threading.Barrier(4)

    def put(n: int) -> None:
        barrier.wait(timeout=30)
        for i in range(8):
            answers.append(_admitted(lambda i=i: client.put(url, json={"summary": f"摘要{n}-{i}"})))

    def toggle() -> None:
        barrier.wait(timeout=30)
        for i in range(8):
            status = "in_review" if i % 2 == 0 else "draft"
            answers.append(_admitted(lambda status=status: client.post(f"{url}/status", json={"status": status})))

    _run_together([threading.Thread(target=put, args=(n,)) for n in range(2)] + [threading.Thread(target=toggle)
                   for _ in range(2)])  # fmt: skip
    assert set(answers) <= {200, 409}, answers
    with kb_of(client).database.session() as session:
        versions = session.scalars(
            select(ArticleVersion).where(ArticleVersion.article_id == article["id"]).order_by(ArticleVersion.version)
        ).all()
        fields = [(v.version, v.fields.get("status"), v.fields.get("summary")) for v in versions]
    assert [v for v, _, _ in fields] == list(range(1, len(fields) + 1))
    assert len(fields) > 8  # a status set to the one it has answers 200 and makes no version
    for (_, status0, summary0), (version, status1, summary1) in itertools.pairwise(fields):
        assert (status0 != status1) + (summary0 != summary1) == 1, f"version {version} changed or reverted both"
