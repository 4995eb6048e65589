"""Scale-out on PostgreSQL (issue 14, item 6): two ``kb serve`` replicas on a primary and its hot standby.

Two local clusters (``initdb``; ``pg_basebackup -R`` for the standby), two real ``kb serve`` processes, each with
its own data folder and so its own index, fed from the shared outbox; their chunks' embeddings are stored in the
database by the replica that wrote them, so the other builds its index from them without re-encoding (the
``hash`` test encoder; the same path holds for m3e-small). Both replicas use

- ``KB_DATABASE_URL`` listing both clusters with ``target_session_attrs=read-write`` (libpq multi-host), so after
  the standby is promoted new connections find it with no change of settings and no restart;
- ``KB_DATABASE_READ_URL`` listing the standby first with ``target_session_attrs=prefer-standby`` (search reads).

The tests run in order on one deployment (module fixture); the last one promotes the standby.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kb.config import Settings
from kb.db import Database, open_database
from kb.identity.accounts import AccountStore
from kb.identity.audit import AuditTrail
from kb.identity.data_key import DataKey
from kb.identity.passwords import PasswordPolicy
from kb.models import Article
from tests.replica.clusters import Cluster, Replica, postgres_bin

pytestmark = pytest.mark.replica

BIN = postgres_bin()
if BIN is None:
    pytest.skip("PostgreSQL server tools (initdb, pg_ctl, pg_basebackup) are not installed", allow_module_level=True)

USER, PASSWORD = "replica-editor", "Kb-replica-2026!"
#: A write on one replica must be searchable on the other within this many seconds (issue 14).
PROPAGATION_S = 2.0


class Deployment:
    """The clusters, the replicas and an editor's token valid on both (sessions live in the database)."""

    def __init__(
        self, primary: Cluster, standby: Cluster, a: Replica, b: Replica, token: str, urls: tuple[str, str]
    ) -> None:
        self.primary, self.standby, self.a, self.b = primary, standby, a, b
        self.urls = urls  # KB_DATABASE_URL, KB_DATABASE_READ_URL
        self.headers = {"Authorization": f"Bearer {token}"}
        self.last_status = 0  # the status of the last write (201 or 202)

    def write(self, replica: Replica, marker: str, timeout: float = 10.0) -> int:
        """Create a published article whose text holds ``marker``; its id. Raises httpx errors or AssertionError."""
        # Mostly unique text: articles alike are folded into one hit as duplicates (kb.search.duplicates).
        nonce = " ".join(uuid.uuid4().hex for _ in range(8))
        body = f"# 复制测试 {marker} {nonce[:8]}\n\n{marker} 主备切换 {nonce}\n"
        response = httpx.post(
            f"{replica.url}/articles", json={"body": body, "status": "published"}, headers=self.headers, timeout=timeout
        )
        # 201: searchable on this replica on return; 202: saved, indexed by its applier soon (index lock busy).
        assert response.status_code in (201, 202), response.text
        self.last_status = response.status_code
        return int(response.json()["article"]["id"])

    def found(self, replica: Replica, marker: str) -> set[int]:
        """Article ids the BM25 leg of ``replica`` finds for ``marker``."""
        response = httpx.get(
            f"{replica.url}/search", params={"q": marker, "mode": "bm25", "limit": 50}, headers=self.headers, timeout=10
        )
        assert response.status_code == 200, response.text
        hits = response.json()["results"]
        return {int(h["article_id"]) for h in hits} | {int(d["article_id"]) for h in hits for d in h["duplicates"]}

    def wait_found(self, replica: Replica, marker: str, ids: set[int], timeout: float) -> float:
        """Seconds from now to the start of the first search on ``replica`` that finds every id in ``ids`` for
        ``marker`` (the search's own latency is not propagation). AssertionError after ``timeout``."""
        started = time.monotonic()
        while True:
            asked = time.monotonic()
            if ids <= self.found(replica, marker):
                return asked - started
            if time.monotonic() - started > timeout:
                late = sorted(ids - self.found(replica, marker))
                raise AssertionError(f"{replica.name}: {late} not found in {timeout} s; log:\n{replica.tail()}")
            time.sleep(0.05)


def _urls(primary: Cluster, standby: Cluster) -> tuple[str, str]:
    hosts = "host=127.0.0.1,127.0.0.1"
    write = f"postgresql+psycopg://postgres@/kb?{hosts}&port={primary.port},{standby.port}"
    read = f"postgresql+psycopg://postgres@/kb?{hosts}&port={standby.port},{primary.port}"
    return (
        write + "&target_session_attrs=read-write&connect_timeout=3",
        read + "&target_session_attrs=prefer-standby&connect_timeout=3",
    )


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    assert BIN is not None
    root = Path(tempfile.mkdtemp(prefix="kb-replica-"))
    if os.geteuid() == 0:  # PostgreSQL runs as postgres (tests.replica.clusters): it must reach its folders
        shutil.chown(root, "postgres")
    primary, standby = Cluster(BIN, root, "primary"), Cluster(BIN, root, "standby")
    replicas: list[Replica] = []
    try:
        primary.init()
        primary.start()
        primary.sql("CREATE DATABASE kb")
        standby.base_backup_of(primary)
        standby.start()
        write_url, read_url = _urls(primary, standby)
        # Schema and an editor before the replicas start (two servers migrating at once would race).
        settings = Settings(data_dir=root / "setup", database_url=write_url, embedding_model="hash")
        database = open_database(settings)
        accounts = AccountStore(
            database,
            PasswordPolicy.from_settings(settings),
            AuditTrail(database, settings.audit_key),
            DataKey.from_settings(settings),
        )
        accounts.ensure_admin()  # else both first starts would create it at once
        accounts.create(USER, ["kb_editor"], "tests", password=PASSWORD, must_change=False)
        database.dispose()
        env = {
            "KB_DATABASE_URL": write_url,
            "KB_DATABASE_READ_URL": read_url,
            "KB_EMBEDDING_MODEL": "hash",
            "KB_INDEX_POLL_SECONDS": "0.1",
        }
        replicas = [Replica(name, root / name, env) for name in ("replica-a", "replica-b")]
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_healthy()
        login = httpx.post(f"{replicas[0].url}/auth/login", json={"username": USER, "password": PASSWORD}, timeout=10)
        assert login.status_code == 200, login.text
        yield Deployment(primary, standby, replicas[0], replicas[1], login.json()["token"], (write_url, read_url))
    finally:
        for replica in replicas:
            replica.stop()
        standby.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_write_on_one_replica_is_searchable_on_the_other_within_2_s(deployment: Deployment) -> None:
    marker = f"rep{uuid.uuid4().hex[:10]}"
    article = deployment.write(deployment.a, marker)
    assert deployment.wait_found(deployment.a, marker, {article}, PROPAGATION_S) <= PROPAGATION_S  # the writer
    assert deployment.wait_found(deployment.b, marker, {article}, PROPAGATION_S) <= PROPAGATION_S
    article_b = deployment.write(deployment.b, marker)
    assert deployment.wait_found(deployment.a, marker, {article, article_b}, PROPAGATION_S) <= PROPAGATION_S


def test_searches_read_from_the_standby_and_the_writer_reads_its_writes(deployment: Deployment) -> None:
    # With WAL replay paused on the standby, a new article exists on the primary only.
    deployment.standby.sql("SELECT pg_wal_replay_pause()")
    reader = Database(*deployment.urls)  # a process that has written nothing
    try:
        marker = f"ryw{uuid.uuid4().hex[:10]}"
        article = deployment.write(deployment.a, marker)
        # The writer finds it: after its own write its reads go to the primary until the standby catches up.
        assert deployment.wait_found(deployment.a, marker, {article}, PROPAGATION_S) <= PROPAGATION_S
        # A process that did not write reads search's rows from the standby, which has not replayed it yet.
        with reader.read_session() as session:
            assert session.get(Article, article) is None
        with reader.session() as session:
            assert session.get(Article, article) is not None
    finally:
        deployment.standby.sql("SELECT pg_wal_replay_resume()")
    deadline = time.monotonic() + PROPAGATION_S
    while True:
        with reader.read_session() as session:
            if session.get(Article, article) is not None:
                break
        assert time.monotonic() < deadline, "the standby did not replay the write in 2 s after resuming"
        time.sleep(0.05)
    reader.dispose()
    assert deployment.wait_found(deployment.b, marker, {article}, PROPAGATION_S) <= PROPAGATION_S


def test_kill_9_of_one_replica_during_writes_loses_nothing(deployment: Deployment) -> None:
    marker = f"kill{uuid.uuid4().hex[:10]}"
    acknowledged: list[int] = []
    refused: list[str] = []
    unexpected: list[str] = []
    killed = threading.Event()

    def writes() -> None:
        for n in range(24):
            replica = deployment.b if n % 2 else deployment.a
            try:
                acknowledged.append(deployment.write(replica, marker, timeout=60))
            except (httpx.HTTPError, AssertionError) as exc:
                target = refused if replica is deployment.b and killed.is_set() else unexpected
                target.append(f"{replica.name}: {exc!r}")
            if n == 9:
                deployment.b.kill9()
                killed.set()

    writer = threading.Thread(target=writes)
    writer.start()
    try:
        writer.join(timeout=300)
        assert not writer.is_alive()
        assert not unexpected, unexpected
        assert killed.is_set() and refused, "the killed replica refused nothing: it was not killed during the writes"
        # The survivor kept serving: every acknowledged write (to either replica) is searchable on it.
        assert deployment.wait_found(deployment.a, marker, set(acknowledged), PROPAGATION_S) <= PROPAGATION_S
    finally:
        # The killed one comes back with its own index and catches up from the outbox.
        deployment.b.start()
        deployment.b.wait_healthy()
    deployment.wait_found(deployment.b, marker, set(acknowledged), 10.0)


def test_promoting_the_standby_keeps_both_replicas_serving(deployment: Deployment) -> None:
    before = f"pre{uuid.uuid4().hex[:10]}"
    old = deployment.write(deployment.a, before)
    deployment.wait_found(deployment.b, before, {old}, PROPAGATION_S)
    deployment.wait_found(deployment.a, before, {old}, PROPAGATION_S)
    # The primary fails (immediate shutdown: like a crash), the operator (or Patroni) promotes the standby.
    deployment.primary.stop(signal.SIGQUIT)
    deployment.standby.promote()
    assert deployment.standby.sql("SELECT pg_is_in_recovery()") == "f"
    # No settings change and no restart: the multi-host URL finds the new primary on the next connection.
    marker = f"post{uuid.uuid4().hex[:10]}"
    written: int | None = None
    deadline = time.monotonic() + 20
    while written is None:
        with contextlib.suppress(httpx.HTTPError, AssertionError):
            written = deployment.write(deployment.b, marker)
        if written is None:
            assert time.monotonic() < deadline, deployment.b.tail()
            time.sleep(0.5)
    if deployment.last_status == 201:  # searchable on this replica on return
        assert written in deployment.found(deployment.b, marker)
    else:  # 202: the wait budget ran out (the first write after the promotion opens new connections)
        assert deployment.wait_found(deployment.b, marker, {written}, PROPAGATION_S) <= PROPAGATION_S
    assert deployment.wait_found(deployment.a, marker, {written}, 5.0) <= 5.0
    assert old in deployment.found(deployment.a, before)
