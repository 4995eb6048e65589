"""Shared fixtures: real app, real SQLite (and PostgreSQL when KB_TEST_DATABASE_URL is set), temp index dirs.

Most tests use the deterministic ``hash`` encoder; tests marked ``slow`` load the real m3e-small model.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from kb.api import create_app
from kb.config import Settings
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.helpers import BUNDLED, ONEBOT_SECRET, add_test_user, login

PG_URL = os.environ.get("KB_TEST_DATABASE_URL", "")

DATABASES = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def analyzer() -> TextAnalyzer:
    """One analyzer for the session (building one loads jieba's dictionary, about 1 s)."""
    return TextAnalyzer()


@pytest.fixture(scope="session")
def hash_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kb.sqlite3'}"
        return
    name = f"kbtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
