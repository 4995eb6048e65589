"""TOTP replay refusal and QR enrolment (身份鉴别 7.1.4.1 d: two factors for administrators), SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient

from kb.errors import UnauthorizedError
from kb.identity.totp import accepted_step, qr_svg
from kb.models import utcnow
from kb.service import KnowledgeBase
from tests.helpers import TEST_PASSWORD, TEST_USER, kb_of

pytestmark = pytest.mark.security

GOOD = "Lan-Zhang-42"


def test_the_same_code_cannot_be_used_twice(kb: KnowledgeBase) -> None:
    kb.accounts.create("zhang.san", ["agent"], "admin", password=GOOD, must_change=False)
    totp = pyotp.parse_uri(kb.accounts.enrol_totp("zhang.san"))
    now = utcnow()
    code = totp.at(now)
    assert kb.sessions.login("zhang.san", GOOD, totp=code, now=now).token
    with pytest.raises(UnauthorizedError, match="one-time code"):
        kb.sessions.login("zhang.san", GOOD, totp=code, now=now + timedelta(seconds=1))  # replayed
    earlier = totp.at(now - timedelta(seconds=30))
    with pytest.raises(UnauthorizedError, match="one-time code"):
        kb.sessions.login("zhang.san", GOOD, totp=earlier, now=now + timedelta(seconds=2))  # older step
    later = now + timedelta(seconds=31)
    assert kb.sessions.login("zhang.san", GOOD, totp=totp.at(later), now=later).token  # the next window
    _, rows = kb.audit.query(event="login")
    assert [r.reason for r in rows if r.result == "failure"].count("totp missing, wrong or reused") == 2


def test_accepted_step_allows_one_step_of_drift_only() -> None:
    secret = pyotp.random_base32()
    totp, now = pyotp.TOTP(secret), utcnow()
    step = totp.timecode(now)
    assert accepted_step(secret, totp.at(now - timedelta(seconds=30)), None, now) == step - 1
    assert accepted_step(secret, totp.at(now + timedelta(seconds=30)), None, now) == step + 1
    assert accepted_step(secret, totp.at(now - timedelta(seconds=90)), None, now) is None
    assert accepted_step(secret, totp.at(now), step, now) is None


def test_qr_enrolment_svg_and_own_enrolment_route(client: TestClient) -> None:
    svg = qr_svg("otpauth://totp/kb:zhang.san?secret=JBSWY3DPEHPK3PXP&issuer=kb")
    assert svg.startswith("<svg") and "<path" in svg and "script" not in svg
    wrong = client.post("/auth/totp", json={"password": "not-my-password"})
    assert wrong.status_code == 403
    enrolled = client.post("/auth/totp", json={"password": TEST_PASSWORD})
    assert enrolled.status_code == 200, enrolled.text
    body = enrolled.json()
    assert body["uri"].startswith("otpauth://totp/kb:dev?") and body["svg"].startswith("<svg")
    _, rows = kb_of(client).audit.query(event="totp.enrol")
    assert rows[0].object == TEST_USER  # newest first
