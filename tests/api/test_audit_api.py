"""GET /audit for the audit administrator only; denials and logins over HTTP are audited (安全审计 7.1.4.3)."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from tests.helpers import SYSADMIN_USER, TEST_USER, anonymous, kb_of, login, sysadmin

pytestmark = pytest.mark.security

GOOD = "Lan-Zhang-42"


def test_audit_trail_for_the_audit_administrator_only(client: TestClient) -> None:
    kb = kb_of(client)
    kb.accounts.create("shen.ji", ["auditadmin"], "tests", password=GOOD, must_change=False)
    kb.accounts.enrol_totp("shen.ji")
    denied = sysadmin(client).get("/audit")  # the sysadmin cannot read the audit trail
    assert denied.status_code == 403 and denied.json()["error"] == "forbidden"
    anonymous(client).post("/auth/login", json={"username": TEST_USER, "password": "Wrong-pass-1"})
    auditor = anonymous(client)
    login(auditor, "shen.ji", GOOD)

    huge = auditor.get("/audit", params={"offset": 2**63})  # found by session 7's outside tester: a 500
    assert huge.status_code == 422 and huge.json()["error"] == "invalid_input"
    page = auditor.get("/audit", params={"limit": 2})
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["total"] >= 5 and len(body["items"]) == 2
    assert body["items"][0]["event"] == "login" and body["items"][0]["actor"] == "shen.ji"
    denial = auditor.get("/audit", params={"event": "authorization", "result": "denied"}).json()["items"]
    assert [(d["actor"], d["object"], d["source_ip"]) for d in denial] == [(SYSADMIN_USER, "GET /audit", "testclient")]
    failures = auditor.get("/audit", params={"actor": TEST_USER, "event": "login", "result": "failure"}).json()
    assert failures["total"] == 1 and failures["items"][0]["reason"] == "wrong password"

    exported = auditor.get("/audit", params={"format": "csv", "event": "user.create"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["object"] for r in rows] == ["shen.ji", SYSADMIN_USER, TEST_USER] and all(
        len(r["mac"]) == 64 for r in rows
    )
    reads = auditor.get("/audit", params={"event": "audit.export"}).json()
    assert reads["total"] == 1  # reading and exporting the trail is itself audited
    bad = auditor.get("/audit", params={"result": "maybe"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_input"
    assert kb.audit.verify().ok
