"""Idempotency-Key after a kill -9 (issue 10): a real ``kb serve`` is killed with SIGKILL while a POST with a key is
inside its use case; a retry of the same request with the same key, answered by another process on the same
database, runs once (201), and a second retry replays that answer. Nothing is done twice, and the key is not
left "in progress".

How the request is held inside the use case: on PostgreSQL another connection holds ``LOCK TABLE tickets``, so the
ticket intake waits on its first read of ``tickets`` (its backend shows up as waiting on a lock; before the fix
the key was already committed by then). On SQLite another connection holds the write lock (``BEGIN IMMEDIATE``),
so the request waits on its first write; the same outcome is asserted.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from kb.api import create_app
from kb.config import Settings
from kb.models import IdempotencyKey, Ticket
from kb.service import KnowledgeBase
from tests.helpers import ROOT
from tests.serving import serve

GOOD = "Lan-Zhang-42"
TICKET = {"title": "打印机脱机", "description": "三楼打印机脱机，重启无效", "service": "日常服务"}


def _serve(settings: Settings, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A ``kb serve`` over the test's database, answering /health; its own data dir (index)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KB_DATA_DIR": str(data),
        "KB_DATABASE_URL": settings.resolved_database_url,
        "KB_EMBEDDING_MODEL": "hash",
        "KB_INDEX_POLL_SECONDS": "0.2",
        "KB_SLA_CHECK_SECONDS": "3600",  # no SLA scan of the tickets table while the test holds it
    }
    served = serve(env, data.parent, timeout_s=90)
    return served.process, served.url


@contextmanager
def _held(settings: Settings) -> Iterator[None]:
    """Hold the request inside its use case (module docstring) until the block ends."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        connection = sqlite3.connect(make_url(url).database or "", isolation_level=None, timeout=30)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.rollback()
            connection.close()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(text("LOCK TABLE tickets IN ACCESS EXCLUSIVE MODE"))
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


def _wait_until_blocked(settings: Settings, sent: threading.Event) -> None:
    assert sent.wait(30)
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        time.sleep(1.0)  # nothing to observe on SQLite; the outcome asserted does not depend on this wait
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    with engine.connect() as connection:
        while connection.execute(query).scalar_one() == 0:
            assert time.monotonic() < deadline, "the request never reached the locked table"
            time.sleep(0.05)
    engine.dispose()


def _count(kb: KnowledgeBase, model: type) -> int:
    with kb.database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_retry_after_kill_9_inside_the_use_case_runs_once(kb: KnowledgeBase, settings: Settings) -> None:
    kb.accounts.create("zhang.san", ["agent"], "admin", password=GOOD, must_change=False)
    first, url = _serve(settings, settings.data_dir.parent / "server-1")
    try:
        login = httpx.post(f"{url}/auth/login", json={"username": "zhang.san", "password": GOOD}, timeout=30)
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['token']}", "Idempotency-Key": "crash-1"}
        sent = threading.Event()
        outcome: list[object] = []

        def post() -> None:
            sent.set()
            try:
                outcome.append(httpx.post(f"{url}/tickets", json=TICKET, headers=headers, timeout=60))
            except httpx.HTTPError as exc:  # the server died under the request
                outcome.append(exc)

        with _held(settings):
            client = threading.Thread(target=post)
            client.start()
            _wait_until_blocked(settings, sent)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
        client.join(60)
        assert outcome and isinstance(outcome[0], httpx.HTTPError), outcome  # no answer reached the client
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    assert _count(kb, Ticket) == 0 and _count(kb, IdempotencyKey) == 0  # the crash rolled back both

    # The retry reaches another process on the same database (this one's app: the same code as kb serve).
    with TestClient(create_app(settings, kb=kb), base_url="https://testserver") as second:
        retry = second.post("/tickets", json=TICKET, headers=headers)
        assert retry.status_code == 201, retry.text  # not 409 idempotency_key_in_progress
        again = second.post("/tickets", json=TICKET, headers=headers)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == retry.json()
    assert _count(kb, Ticket) == 1
