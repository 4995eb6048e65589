"""Shared fixtures: real app, real SQLite (and PostgreSQL when KB_TEST_DATABASE_URL is set), temp index dirs.

Most tests use the deterministic ``hash`` encoder; tests marked ``slow`` load the real m3e-small model.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from kb.api import create_app
from kb.config import Settings
from kb.db import Database
from kb.search.embedders.factory import load_embedder
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import BUNDLED, ONEBOT_SECRET, add_test_user, login, run_folder

PG_URL = os.environ.get("KB_TEST_DATABASE_URL", "")

# No app start in tests freezes the test process's objects (each freeze is preceded by a full collection and lasts
# for the process); tests/api/test_gc_freeze.py turns it on where it is the subject.
os.environ.setdefault("KB_GC_FREEZE", "false")

DATABASES = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def analyzer() -> TextAnalyzer:
    """One analyzer for the session (building one loads jieba's dictionary, about 1 s)."""
    return TextAnalyzer()


@pytest.fixture(scope="session")
def hash_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="session")
def m3e_cache(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One folder for the m3e-small ONNX export (and its int8 variant) for the whole run, shared by the xdist
    workers (the export is written to a temporary name and renamed, so two workers exporting at once is safe):
    each export costs 20-40 s. ``test_onnx_backend_equals_sentence_transformers`` still exports into a folder
    of its own."""
    folder = run_folder(tmp_path_factory, worker_id) / "m3e-cache"
    folder.mkdir(exist_ok=True)
    with (folder / "export.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker exports, the others wait and reuse it
        load_embedder("m3e-small", cache_dir=folder).load()
    return folder


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session (per xdist worker): tests copy it instead of running every
    migration again (about 0.2-0.7 s each; ``tests/test_db.py`` still migrates an empty database)."""
    path = tmp_path_factory.mktemp("template") / "kb.sqlite3"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    database.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgresql() -> Iterator[str]:
    """The name of a PostgreSQL database migrated to head once per session (per xdist worker), the template of
    each test's database (``CREATE DATABASE ... TEMPLATE``)."""
    if not PG_URL:
        pytest.skip("KB_TEST_DATABASE_URL is not set")
    name = f"kbtemplate_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    try:
        database.migrate()
    finally:
        database.dispose()
    try:
        yield name
    finally:
        with _pg_admin() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def _pg_admin() -> Iterator[Connection]:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            yield conn
    finally:
        admin.dispose()


@contextmanager
def _new_database(tmp_path: Path, kind: str, template: Path | str | None) -> Iterator[str]:
    """The URL of a new database of ``kind`` (``sqlite`` file under ``tmp_path``, or a fresh PostgreSQL
    database dropped afterwards): a copy of ``template``, or empty when it is None."""
    if kind == "sqlite":
        path = tmp_path / "kb.sqlite3"
        if template is not None:
            shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    name = f"kbtest_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with _pg_admin() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables): a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    with _new_database(tmp_path, request.param, None) as url:
        yield url


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own for the test, migrated to head and holding no rows: a copy of the session's migrated
    SQLite file, or a fresh PostgreSQL database made from the migrated template and dropped afterwards."""
    name = "migrated_sqlite" if request.param == "sqlite" else "migrated_postgresql"
    with _new_database(tmp_path, request.param, request.getfixturevalue(name)) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        embedding_model="hash",
        index_poll_seconds=0.2,
        index_wait_seconds=30,  # a write answers 201 (searchable) however loaded the test machine; 202: own tests
        im_webhook_secret=ONEBOT_SECRET,
    )


@pytest.fixture
def kb(settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder) -> Iterator[KnowledgeBase]:
    service = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer).open()
    try:
        yield service
    finally:
        service.close()


@pytest.fixture
def anonymous_client(
    settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> Iterator[TestClient]:
    """The real app over HTTPS (so the Secure session cookie is sent back), not logged in. The database holds the
    user :data:`tests.helpers.TEST_USER`."""
    service = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer)
    add_test_user(service)
    with TestClient(create_app(settings, kb=service), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture
def client(anonymous_client: TestClient) -> TestClient:
    """The real app, logged in through POST /auth/login as :data:`tests.helpers.TEST_USER`."""
    login(anonymous_client)
    return anonymous_client


@pytest.fixture(scope="module")
def bundled_kb(tmp_path_factory: pytest.TempPathFactory, analyzer: TextAnalyzer) -> Iterator[KnowledgeBase]:
    """The bundled sample KB (articles/), imported once per module, hash encoder, SQLite."""
    data = tmp_path_factory.mktemp("bundled")
    service = KnowledgeBase(
        Settings(data_dir=data, embedding_model="hash"), embedder=HashingEmbedder(), analyzer=analyzer
    ).open()
    service.writer.import_paths([BUNDLED], "tester")
    try:
        yield service
    finally:
        service.close()
