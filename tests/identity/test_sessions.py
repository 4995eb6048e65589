"""Login, lockout and session timeouts (登录失败处理、超时退出, GB/T 22239-2019 7.1.4.1 b), SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from kb.errors import AccountLockedError, UnauthorizedError
from kb.identity.audit import AuditContext
from kb.identity.sessions import LOCKED, SessionPolicy, Sessions, token_digest
from kb.models import UserSession, utcnow
from kb.service import KnowledgeBase

pytestmark = pytest.mark.security

GOOD = "Lan-Zhang-42"


@pytest.fixture
def kb_user(kb: KnowledgeBase) -> KnowledgeBase:
    kb.accounts.create("zhang.san", ["agent"], "admin", password=GOOD, must_change=False)
    return kb


def test_five_failures_in_15_minutes_lock_for_30_minutes(kb_user: KnowledgeBase) -> None:
    kb, start = kb_user, utcnow()
    for i in range(4):
        with pytest.raises(UnauthorizedError):
            kb.sessions.login("zhang.san", "wrong", now=start + timedelta(minutes=i))
    with pytest.raises(AccountLockedError) as info:
        kb.sessions.login("Zhang.San", "wrong", now=start + timedelta(minutes=4))
    assert info.value.status == 423 and info.value.code == "account_locked"
    with pytest.raises(AccountLockedError):  # the right password does not help while locked
        kb.sessions.login("zhang.san", GOOD, now=start + timedelta(minutes=33))
    assert kb.sessions.sessions_of("zhang.san") == 0
    assert kb.sessions.login("zhang.san", GOOD, now=start + timedelta(minutes=35)).token


def test_failures_spread_beyond_the_window_do_not_lock(kb_user: KnowledgeBase) -> None:
    kb, start = kb_user, utcnow()
    for i in range(4):
        with pytest.raises(UnauthorizedError):
            kb.sessions.login("zhang.san", "wrong", now=start + timedelta(minutes=i))
    for i in range(4):
        with pytest.raises(UnauthorizedError):
            kb.sessions.login("zhang.san", "wrong", now=start + timedelta(minutes=16 + i))
    assert kb.sessions.login("zhang.san", GOOD, now=start + timedelta(minutes=21)).token


def test_a_successful_login_clears_the_failures(kb_user: KnowledgeBase) -> None:
    kb = kb_user
    for _ in range(4):
        with pytest.raises(UnauthorizedError):
            kb.sessions.login("zhang.san", "wrong")
    kb.sessions.login("zhang.san", GOOD)
    for _ in range(4):
        with pytest.raises(UnauthorizedError):
            kb.sessions.login("zhang.san", "wrong")
    assert kb.sessions.login("zhang.san", GOOD).token


def test_unknown_users_get_the_same_answers(kb_user: KnowledgeBase) -> None:
    kb = kb_user
    answers = []
    for name in ("zhang.san", "no.such.user"):
        messages = []
        for _ in range(5):
            with pytest.raises((UnauthorizedError, AccountLockedError)) as info:
                kb.sessions.login(name, "wrong")
            messages.append((type(info.value), info.value.message))
        answers.append(messages)
    assert answers[0] == answers[1]
    assert answers[0][-1] == (AccountLockedError, LOCKED)


def test_idle_timeout_30_minutes(kb_user: KnowledgeBase) -> None:
    kb, start = kb_user, utcnow()
    token = kb.sessions.login("zhang.san", GOOD, now=start).token
    assert kb.sessions.resolve(token, now=start + timedelta(minutes=29)).username == "zhang.san"
    assert kb.sessions.resolve(token, now=start + timedelta(minutes=58)).username == "zhang.san"  # use refreshes
    with pytest.raises(UnauthorizedError, match="expired"):
        kb.sessions.resolve(token, now=start + timedelta(minutes=89))
    with pytest.raises(UnauthorizedError):  # the row is gone
        kb.sessions.resolve(token, now=start + timedelta(minutes=59))


def test_absolute_lifetime_12_hours_despite_use(kb_user: KnowledgeBase) -> None:
    kb, start = kb_user, utcnow()
    result = kb.sessions.login("zhang.san", GOOD, now=start)
    assert result.expires_at == start + timedelta(hours=12)
    for minutes in range(20, 12 * 60, 20):
        kb.sessions.resolve(result.token, now=start + timedelta(minutes=minutes))
    with pytest.raises(UnauthorizedError):
        kb.sessions.resolve(result.token, now=start + timedelta(hours=12, minutes=1))


def test_tokens_are_random_stored_hashed_and_end_at_logout(kb_user: KnowledgeBase) -> None:
    kb = kb_user
    first, second = kb.sessions.login("zhang.san", GOOD).token, kb.sessions.login("zhang.san", GOOD).token
    assert first != second and len(first) >= 43
    with kb.database.session() as session:
        stored = set(session.scalars(select(UserSession.token_hash)))
    assert stored == {token_digest(first), token_digest(second)} and first not in stored
    kb.sessions.logout(first, AuditContext("zhang.san"))
    with pytest.raises(UnauthorizedError):
        kb.sessions.resolve(first)
    assert kb.sessions.resolve(second).username == "zhang.san"
    with pytest.raises(UnauthorizedError):
        kb.sessions.resolve("forged-" + second)


def test_totp_second_factor_counts_failures_and_is_required_for_administrators(kb_user: KnowledgeBase) -> None:
    kb = kb_user
    uri = kb.accounts.enrol_totp("zhang.san")
    totp = pyotp.parse_uri(uri)
    for code in (None, "123456", "12345"):
        with pytest.raises(UnauthorizedError, match="one-time code"):
            kb.sessions.login("zhang.san", GOOD, totp=code)
    assert kb.sessions.login("zhang.san", GOOD, totp=totp.now()).token
    for _ in range(4):
        with pytest.raises(UnauthorizedError):
            kb.sessions.login("zhang.san", GOOD)
    with pytest.raises(AccountLockedError):  # missing codes count toward the lockout
        kb.sessions.login("zhang.san", GOOD)
    kb.accounts.create("shen.ji", ["auditadmin"], "admin", password=GOOD, must_change=False)
    with pytest.raises(UnauthorizedError, match=r"kb users totp NAME"):  # the same answer as a wrong password
        kb.sessions.login("shen.ji", GOOD)
    relaxed = Sessions(kb.database, kb.accounts, SessionPolicy(totp_roles=()), kb.audit)
    assert relaxed.login("shen.ji", GOOD).token  # KB_TOTP_REQUIRED_FOR_ADMINS=false
    _, rows = kb.audit.query(event="totp.enrol")
    assert [r.object for r in rows] == ["zhang.san"]
