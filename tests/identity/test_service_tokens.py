"""Resolving a service token (kb.identity.service_tokens): its principal and scopes, its use time recorded in steps,
and a revocation made by another process (another KnowledgeBase on the same database) refused at the next use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from kb.config import Settings
from kb.errors import UnauthorizedError
from kb.identity.audit import CLI
from kb.identity.permissions import Permission
from kb.identity.service_tokens import LAST_USED_STEP
from kb.models import AuditEvent, ServiceToken, as_utc, utcnow
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase


def _last_used(kb: KnowledgeBase, name: str) -> object:
    with kb.database.session() as session:
        return session.scalar(select(ServiceToken.last_used_at).where(ServiceToken.name == name))


def test_resolve_gives_the_scoped_principal_and_records_use_in_steps(kb: KnowledgeBase) -> None:
    _, token = kb.service_tokens.create("ticket-bot", ["search", "suggest"], CLI)
    assert _last_used(kb, "ticket-bot") is None
    principal = kb.service_tokens.resolve(token)
    assert principal.username == "svc:ticket-bot"
    assert principal.scopes == frozenset({Permission.SEARCH, Permission.SUGGEST})
    first = _last_used(kb, "ticket-bot")
    assert first is not None
    kb.service_tokens.resolve(token)
    assert _last_used(kb, "ticket-bot") == first  # within the step: no write
    old = utcnow() - LAST_USED_STEP - timedelta(seconds=1)
    with kb.database.session() as session:
        session.execute(update(ServiceToken).where(ServiceToken.name == "ticket-bot").values(last_used_at=old))
    kb.service_tokens.resolve(token)
    assert as_utc(_last_used(kb, "ticket-bot")) > old  # type: ignore[arg-type]


def test_unknown_token_is_refused_and_audited(kb: KnowledgeBase) -> None:
    with pytest.raises(UnauthorizedError):
        kb.service_tokens.resolve("kbs_not-a-token", ip="10.0.0.9")
    with kb.database.session() as session:
        reasons = list(session.scalars(select(AuditEvent.reason).where(AuditEvent.event == "service.token")))
    assert reasons == ["unknown service token"]


def test_revocation_by_another_process_takes_effect_at_the_next_use(
    settings: Settings, kb: KnowledgeBase, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    _, token = kb.service_tokens.create("im-bot", ["search"], CLI)
    other = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer)  # a second server process
    try:
        assert kb.service_tokens.resolve(token).username == "svc:im-bot"
        assert other.service_tokens.resolve(token).username == "svc:im-bot"
        other.service_tokens.revoke("im-bot", CLI)
        with pytest.raises(UnauthorizedError):
            kb.service_tokens.resolve(token)
        with pytest.raises(UnauthorizedError):
            other.service_tokens.resolve(token)
    finally:
        other.close()
