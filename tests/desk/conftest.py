"""Fixtures of the desk tests: a real SMTP intake server on a free port, the workbench app (API and pages)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kb.config import Settings
from kb.desk.channels.email import SmtpIntake
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from kb.web.app import create_app
from tests.helpers import add_test_user, anonymous, kb_of, login

#: The password of the users :func:`as_user` makes.
GOOD = "Desk-Test-2026!"


@pytest.fixture
def smtp(client: TestClient) -> Iterator[tuple[KnowledgeBase, int]]:
    """(knowledge base, port) of an SMTP intake feeding the client's knowledge base."""
    kb: KnowledgeBase = client.app.state.kb  # type: ignore[attr-defined]
    intake = SmtpIntake(kb.tickets, "日常服务", port=0)
    _, port = intake.start()
    try:
        yield kb, port
    finally:
        intake.stop()


@pytest.fixture
def web(settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder) -> Iterator[TestClient]:
    """The workbench app (API and pages), logged in as the test user (desk_lead)."""
    service = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer)
    add_test_user(service)
    with TestClient(create_app(settings, kb=service), base_url="https://testserver") as test_client:
        login(test_client)
        yield test_client


def as_user(client: TestClient, name: str, roles: list[str], groups: tuple[str, ...] = ()) -> TestClient:
    """A second client of the same app logged in as a new user ``name``."""
    kb_of(client).accounts.create(name, roles, "tests", groups=groups, password=GOOD, must_change=False)
    other = anonymous(client)
    login(other, name, GOOD)
    return other
