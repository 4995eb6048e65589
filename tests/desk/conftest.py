"""Fixtures of the desk tests: a real SMTP intake server on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from kb.desk.channels.email import SmtpIntake
from kb.service import KnowledgeBase


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
