"""A request through a session or a service token writes nothing to the database in a burst (the use clocks move
in steps), and a session still ends no later than its idle limit says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from kb.errors import UnauthorizedError
from kb.identity.sessions import LAST_SEEN_STEP
from kb.models import utcnow
from kb.service import KnowledgeBase


def _writes(kb: KnowledgeBase) -> tuple[list[str], object]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            seen.append(statement)

    event.listen(kb.database.engine, "before_cursor_execute", count)
    return seen, count


def test_a_burst_of_session_requests_writes_once_and_idle_still_ends_the_session(kb: KnowledgeBase) -> None:
    kb.accounts.create("burst", ["agent"], "tests", password="Kb-burst-2026!", must_change=False)
    start = utcnow()
    token = kb.sessions.login("burst", "Kb-burst-2026!", now=start).token
    writes, count = _writes(kb)
    try:
        for n in range(20):  # 20 requests within the step: no write
            kb.sessions.resolve(token, now=start + timedelta(milliseconds=100 * n))
        assert writes == []
        kb.sessions.resolve(token, now=start + LAST_SEEN_STEP + timedelta(seconds=1))  # the clock moves once
        assert len(writes) == 1
    finally:
        event.remove(kb.database.engine, "before_cursor_execute", count)
    idle = kb.sessions.policy.idle
    last = start + LAST_SEEN_STEP + timedelta(seconds=1)
    kb.sessions.resolve(token, now=last + idle - timedelta(seconds=1))  # still live, and refreshed now
    with pytest.raises(UnauthorizedError):
        kb.sessions.resolve(token, now=last + 2 * idle)


def test_a_burst_of_service_token_requests_writes_nothing(kb: KnowledgeBase) -> None:
    from kb.identity.audit import AuditContext
    from kb.identity.permissions import Permission

    _, token = kb.service_tokens.create("burst-svc", [Permission.SEARCH.value], AuditContext("tests"))
    kb.service_tokens.resolve(token)  # the first use is recorded
    writes, count = _writes(kb)
    try:
        for _ in range(20):
            assert kb.service_tokens.resolve(token).username.endswith("burst-svc")
    finally:
        event.remove(kb.database.engine, "before_cursor_execute", count)
    assert writes == []
